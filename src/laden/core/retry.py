"""When to try again, and how long to wait first.

`RetryPolicy` is a value: how many retries, the backoff's base and cap, the longest wait a
server's `Retry-After` is honoured for, and which kinds of error are worth another attempt. A
manager takes its policy from `Config` (the settings file's `retries`, `retry_backoff`,
`retry_max_backoff`, `max_retry_after` and `retry_on`); a download may carry its own
(`DownloadOptions.retry`), journalled with it so a resume keeps it. The counting lives with the
caller: `exhausted(attempt, error)` and `delay(attempt)`, since every connection counts its own
attempts and starts again at zero after a good range.

Errors are sorted into kinds once, here (`error_kind`), from their class, status and the words
the sources use for them:

```
timeout        no answer in time: a connect timeout, a stalled or too slow connection, HTTP 408
refused        nothing listens there: the connection was refused
dropped        the connection broke: reset, closed early, fewer bytes than promised
server-error   HTTP 5xx (503 is slow-down) and the other passing statuses of a source
slow-down      the server asks for fewer requests: HTTP 429 and 503, FTP 421
unresolved     the host name does not resolve (one retry at most: a DNS hiccup passes)
```

Errors that are not retryable at all (404, a checksum mismatch) are no kind: no policy retries
them.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

from .errors import HostNotFound, InputError, Retryable, SlowDown

UNRESOLVED_RETRIES = 1
"""Retries of a name that does not resolve: a DNS hiccup passes, a wrong name does not."""

ERROR_KINDS = ("timeout", "refused", "dropped", "server-error", "slow-down", "unresolved")
"""The kinds of error a policy may retry, in the order they are written back."""
KIND_ALIASES = {"5xx": "server-error", "429": "slow-down", "503": "slow-down",
                "dns": "unresolved", "reset": "dropped"}
"""Other names people write for a kind (`503` is one of the slow-down answers, so it means all
of them)."""
LONGEST_BACKOFF = 3600.0
LONGEST_WAIT = 24 * 3600.0
"""Bounds of the seconds a policy may say: past them a number is a mistake (ms for s), not a
plan."""
_TIMEOUT_WORDS = ("timed out", "timeout", "stalled", "too slow")


def error_kind(error: BaseException | None) -> str | None:
    """The kind (`ERROR_KINDS`) of a retryable error; None for an error that is not retryable.

    One table for every source: HTTP statuses by number, network failures by the words the
    sources put in their messages (they translate foreign exceptions to `Retryable` first).
    """
    if isinstance(error, HostNotFound):
        return "unresolved"
    if isinstance(error, SlowDown):
        return "slow-down"
    if not isinstance(error, Retryable):
        return None
    if error.status == 408:
        return "timeout"
    if error.status is not None:
        return "server-error"
    text = str(error).lower()
    if any(word in text for word in _TIMEOUT_WORDS):
        return "timeout"
    if "refused" in text:
        return "refused"
    return "dropped"


def parse_kinds(value: Any, what: str = "retry_on") -> tuple[str, ...]:
    """Error kinds as written by a user: a list of names, or one string of names separated by
    commas or spaces; "all" for every kind, "none" (or nothing) for none.

    Raises:
        InputError: a name that is no kind (the message lists the kinds), or not a list.
    """
    if isinstance(value, str):
        names: Iterable[Any] = [n for n in re.split(r"[,\s]+", value) if n]
    elif isinstance(value, list | tuple | set | frozenset):
        names = value
    else:
        raise InputError(f"{what} must be a list of error kinds ({', '.join(ERROR_KINDS)}), "
                         f"not {str(value)[:40]!r}")
    wanted: set[str] = set()
    for name in names:
        key = str(name).strip().lower().replace("_", "-")
        if key == "all":
            wanted.update(ERROR_KINDS)
        elif key == "none":
            continue
        elif key in ERROR_KINDS or key in KIND_ALIASES:
            wanted.add(KIND_ALIASES.get(key, key))
        else:
            raise InputError(f"{what}: {str(name)[:40]!r} is not an error kind; the kinds are "
                             f"{', '.join(ERROR_KINDS)} (or all)")
    return tuple(kind for kind in ERROR_KINDS if kind in wanted)


def check_attempts(name: str, value: Any) -> int:
    """`value` if it is a count of retries laden accepts (0 to 1000)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number, not {str(value)[:40]!r}")
    if not 0 <= value <= 1000:
        raise InputError(f"{name} must be between 0 and 1000, not {value}")
    return value


def check_seconds(name: str, value: Any, longest: float) -> float:
    """`value` as seconds, if it is a number from 0 to `longest`."""
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not 0 <= value <= longest):
        raise InputError(f"{name} must be a number of seconds from 0 to {longest:g}, "
                         f"not {str(value)[:40]!r}")
    return float(value)


@dataclass(frozen=True)
class RetryPolicy:
    """When to try again after an error, and how long to wait first.

    Example:
        `manager.add(url, retry=RetryPolicy(attempts=10, backoff=2, retry_on={"5xx"}))`
    """

    attempts: int = 5
    """Retries after the first attempt."""
    backoff: float = 0.5
    """Seconds before the first retry; each further one waits up to twice as long."""
    max_backoff: float = 30.0
    """The longest wait between two retries, however many came before."""
    max_retry_after: float = 300.0
    """A server asking for a longer wait than this (Retry-After) is waited for this long."""
    retry_on: tuple[str, ...] = ERROR_KINDS
    """The kinds of error worth another attempt (see `ERROR_KINDS`; aliases such as "5xx" and
    "429" are accepted); the rest fail at once."""

    def __post_init__(self) -> None:
        check_attempts("attempts", self.attempts)
        # Frozen, so the normalised values are set the way dataclasses set them.
        object.__setattr__(self, "backoff", check_seconds("backoff", self.backoff,
                                                          LONGEST_BACKOFF))
        object.__setattr__(self, "max_backoff", check_seconds("max_backoff", self.max_backoff,
                                                              LONGEST_WAIT))
        object.__setattr__(self, "max_retry_after", check_seconds(
            "max_retry_after", self.max_retry_after, LONGEST_WAIT))
        object.__setattr__(self, "retry_on", parse_kinds(self.retry_on, "retry_on"))

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `attempt` (1 for the first retry)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2 ** min(64, max(0, attempt - 1))))
        # Full jitter: connections that failed together do not come back together.
        return random.uniform(ceiling / 2, ceiling)

    def retries(self, error: BaseException | None) -> bool:
        """Whether this policy retries `error` at all (an error of no kind: the caller's own
        rule decides, such as the probe's one more try after a 401)."""
        kind = error_kind(error)
        return kind is None or kind in self.retry_on

    def allowed(self, error: BaseException | None = None) -> int:
        """Retries allowed after `error`: all of them, none for a kind not retried, and one
        for a name that does not resolve."""
        if not self.retries(error):
            return 0
        if isinstance(error, HostNotFound):
            return min(self.attempts, UNRESOLVED_RETRIES)
        return self.attempts

    def exhausted(self, attempt: int, error: BaseException | None = None) -> bool:
        """Whether retry number `attempt` (1 for the first) after `error` is one too many."""
        return attempt > self.allowed(error)

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed and validated; None values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_mapping(self) -> dict[str, Any]:
        """The policy as plain values (for the journal and `--json`)."""
        data = dataclasses.asdict(self)
        data["retry_on"] = list(self.retry_on)
        return data

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], what: str = "retry") -> RetryPolicy:
        """The policy `to_mapping` wrote, or a user wrote (a manifest item's `retry:`).

        Raises:
            InputError: a key that is no field of the policy, or a value out of range.
        """
        if not isinstance(data, Mapping):
            raise InputError(f"{what} must be a RetryPolicy or a table of "
                             f"{', '.join(POLICY_FIELDS)}, "
                             f"not {str(data)[:40]!r}")
        unknown = sorted(str(key) for key in data if key not in POLICY_FIELDS)
        if unknown:
            raise InputError(f"{what}: unknown key {unknown[0][:40]!r}; the keys are "
                             f"{', '.join(POLICY_FIELDS)}")
        return cls(**data)


POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(RetryPolicy))


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
