"""When to try again, and how long to wait first.

`RetryPolicy` is a value object: `delay()` computes exponential backoff with full jitter and
honours a server's `Retry-After`; the counting lives with the caller.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from .errors import HostNotFound

UNRESOLVED_RETRIES = 1
"""Retries of a name that does not resolve: a DNS hiccup passes, a wrong name does not."""


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    """Retries after the first attempt."""
    backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0
    """A server asking for a longer wait than this is not waited for blindly."""

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2 ** max(0, attempt - 1)))
        # Full jitter: connections that failed together do not come back together.
        return random.uniform(ceiling / 2, ceiling)

    def allowed(self, error: BaseException | None = None) -> int:
        """Retries allowed after `error`: all of them, but one for a name that does not
        resolve."""
        if isinstance(error, HostNotFound):
            return min(self.attempts, UNRESOLVED_RETRIES)
        return self.attempts

    def exhausted(self, attempt: int, error: BaseException | None = None) -> bool:
        return attempt > self.allowed(error)


# Longer than any wait a policy honours (a year), short enough for a float to hold exactly.
_LONGEST_RETRY_AFTER = 365 * 24 * 3600.0
_DIGITS = re.compile(r"[0-9]+")


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: a number of seconds, or an HTTP date.

    Anything else is None (the header is ignored, the usual backoff applies): a server's
    header is not the user's input and never fails a download.
    """
    if not value:
        return None
    value = value.strip()
    # Only ASCII digits: str.isdigit() also takes "²" and "٣", which float() then refuses.
    if _DIGITS.fullmatch(value):
        digits = value.lstrip("0") or "0"
        # A 400-digit number is "a very long time", not an overflow or an infinity.
        return _LONGEST_RETRY_AFTER if len(digits) > 9 else min(float(digits),
                                                                 _LONGEST_RETRY_AFTER)
    if len(value) > 64:
        return None  # no HTTP date is this long
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:
        return None
    try:
        seconds = when.timestamp() - (time.time() if now is None else now)
    except (OverflowError, ValueError, OSError):  # year 9999 with an odd offset, say
        return None
    return min(max(0.0, seconds), _LONGEST_RETRY_AFTER)
