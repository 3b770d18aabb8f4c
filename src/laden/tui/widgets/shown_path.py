"""Paths as the app shows them: `~` for the home folder, as a shell prompt writes them."""

from __future__ import annotations

import os


def home_relative(path: str) -> str:
    """`path` with the home folder written `~` (the part a user recognises is the rest)."""
    home = os.path.expanduser("~")
    if home != os.sep and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home):]
    return path
