"""podarchive's store, search library and web site."""

__version__ = "0.1.0"
