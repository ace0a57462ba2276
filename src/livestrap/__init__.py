"""livestrap: build, store and serve live discovery images."""

__version__ = "0.1.0"
