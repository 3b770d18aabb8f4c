"""`python -m laden` is the `laden` command."""

from .cli import entry

entry()
