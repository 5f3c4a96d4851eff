"""The lesson widgets: each a plain state class (tested without a browser) and a thin ipywidgets view."""
