"""The version laden reports: `laden --version` and the User-Agent of every request."""

__version__ = "0.1.0"
