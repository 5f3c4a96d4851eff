"""Tools around the library: train the shipped models, measure them, fetch data sets, measure costs."""
