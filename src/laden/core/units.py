"""Sizes and rates in the units people type and read (K, M, G are powers of 1024, as in curl)."""

from __future__ import annotations

import math
import re
import reprlib
from decimal import Decimal

from .errors import InputError

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)
_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

MAX_SIZE = 2**62
"""The largest size or rate taken (4 EiB): beyond any disk or link, and small enough that the
sums, products and floats made from it later stay exact and finite."""
_SHOWN = 30
"""Characters of a refused value a message repeats: enough to recognise it, never a flood."""


def parse_size(text: str | int | float, *, what: str = "size") -> int:
    """Parse `5M`, `512k`, `1.5G` or a plain byte count into bytes.

    Raises:
        InputError: for anything else, a negative size, or one above `MAX_SIZE`.
    """
    # From a settings file or a manifest anything can arrive: a list, true, .inf, 10**400.
    if isinstance(text, bool) or not isinstance(text, str | int | float) or (
        isinstance(text, float) and not math.isfinite(text)
    ):
        raise InputError(f"{what} must be a number like 5M, not {_shown(text)}")
    if isinstance(text, int | float):
        value = Decimal(text)
    else:
        match = _SIZE.match(text)
        if not match:
            raise InputError(
                f"{what} must be a number with an optional K, M or G, not {_shown(text)}")
        # Decimal, not float: "1" and 400 zeros is too large, not infinity.
        value = Decimal(match.group(1)) * _FACTORS[match.group(2).lower()]
    if value < 0:
        raise InputError(f"{what} cannot be negative: {_shown(text)}")
    if value > MAX_SIZE:
        raise InputError(f"{what} is too large: at most {MAX_SIZE} bytes (4 EiB), "
                         f"not {_shown(text)}")
    return int(value)


def _shown(value: object) -> str:
    """`value` as a message repeats it: its first characters only."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 80:
        # repr() of a 5,000-digit int raises; its length is what matters here anyway.
        return f"a number of about {int(value.bit_length() * math.log10(2)) + 1} digits"
    try:
        text = value if isinstance(value, str) else reprlib.repr(value)
    except ValueError:
        text = type(value).__name__
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "…"
    return repr(text) if isinstance(value, str) else text


def parse_rate(text: str | int | float | None) -> int | None:
    """A bandwidth limit in bytes per second; 0, "", "0" and None mean unlimited."""
    if text is None or text == "" or text == 0:
        return None
    value = parse_size(text, what="rate limit")
    return value or None


def exact_size_text(n: int) -> str | int:
    """`n` bytes the way people write it when that is exact ("50M", "512K"), else `n`."""
    for suffix, factor in (("T", 1024**4), ("G", 1024**3), ("M", 1024**2), ("K", 1024)):
        if n and n % factor == 0:
            return f"{n // factor}{suffix}"
    return n


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
