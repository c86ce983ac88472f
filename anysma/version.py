"""The single place that defines anysma's version."""

__version__ = "0.1.0"
