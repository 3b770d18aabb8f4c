"""Sizes and rates in the units people type and read (K, M, G are powers of 1024, as in curl)."""

from __future__ import annotations

import math
import re

from .errors import InputError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str | int | float, *, what: str = "size") -> int:
    """Parse `5M`, `512k`, `1.5G` or a plain byte count into bytes."""
    # From a settings file or a manifest anything can arrive: a list, true, .inf.
    if isinstance(text, bool) or not isinstance(text, str | int | float) or (
        isinstance(text, float) and not math.isfinite(text)
    ):
        raise InputError(f"{what} must be a number like 5M, not {text!r}")
    if isinstance(text, int | float):
        value = int(text)
    else:
        match = _SIZE.match(text)
        if not match:
            raise InputError(f"{what} must be a number with an optional K, M or G, not {text!r}")
        value = int(float(match.group(1)) * _FACTORS[match.group(2).lower()])
    if value < 0:
        raise InputError(f"{what} cannot be negative: {text!r}")
    return value


def parse_rate(text: str | int | float | None) -> int | None:
    """A bandwidth limit in bytes per second; 0, "", "0" and None mean unlimited."""
    if text is None or text == "" or text == 0:
        return None
    value = parse_size(text, what="rate limit")
    return value or None


def format_size(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_rate(n: float | None) -> str:
    return "-" if not n else f"{format_size(n)}/s"


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds + 0.5)
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"
