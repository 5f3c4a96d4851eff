"""sr_teach: learn image super-resolution by running experiments."""

__version__ = "0.1.0"
