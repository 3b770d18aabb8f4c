"""Which connections are too slow to keep: judged by their speed over a window, not by silence.

The stall timeout catches a connection that sends nothing; a server that sends one byte every
second never trips it, and neither does a connection that crawls while its siblings fly. The
transfer asks `judge` a few times a second; a connection it names is closed and a fresh one
takes over its remaining range (see `Coordinator._replace_slow`).

Two rules, as download managers have them (aria2's `--lowest-speed-limit`, Surge's health
check):

* Too slow for anyone: under `lowest_speed` bytes per second over the last `window` seconds
  (the stall timeout). This also bounds a download that has only one connection.
* Far behind the others: after a grace period, under a tenth of the mean speed of the other
  connections of the same download (running, or recently ended), with more than a grace
  period's worth of its range left at its own speed.

Neither applies while a bandwidth limit could be the reason for the slowness.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..core.units import format_size

if TYPE_CHECKING:
    from .download import Connection

GRACE = 5.0
"""Seconds a connection reads before it is compared with the others."""
BEHIND = 0.1
"""Far behind: under this share of the others' mean speed."""
SHORTEST_WINDOW = 2.0
"""A stall timeout shorter than this still judges speed over this long: a read in flight shows
its bytes only when it ends, and reads may take half a second (see `connection.adapted`)."""
MAX_REPLACED = 8
"""Replacements per download and attempt: a server that is slow on every connection is not
reconnected for ever (the low-speed rule and the retries still end it)."""


class Health:
    def __init__(self, lowest_speed: int, window: float) -> None:
        self.lowest_speed = lowest_speed
        self.window = max(window, SHORTEST_WINDOW)
        self.replaced = 0
        self._samples: dict[tuple[int, float], deque[tuple[float, int]]] = {}
        self._ended: deque[float] = deque(maxlen=8)

    def answer_read(self, count: int, seconds: float) -> None:
        """An answer's body was read (`count` bytes in `seconds`): how fast this server can be,
        compared with a crawler left on its own after the others finished (a fast range may
        end between two judgements, unseen by them)."""
        if count and seconds > 0:
            self._ended.append(count / seconds)

    def judge(self, connections: Mapping[int, Connection], *, limited: bool,
              now: float | None = None) -> dict[int, str]:
        """The connections to replace, each with the reason in words."""
        now = time.monotonic() if now is None else now
        speeds: dict[int, tuple[float, float]] = {}  # number -> (speed over GRACE, age)
        slow: dict[int, str] = {}
        alive = set()
        for number, live in list(connections.items()):
            if not live.since or live.abort is None:
                continue  # not reading a body, or nothing to close it with
            key = (number, live.since)
            alive.add(key)
            samples = self._samples.setdefault(key, deque())
            samples.append((now, live.bytes))
            while len(samples) > 2 and samples[1][0] <= now - self.window:
                samples.popleft()
            age = now - live.since
            speeds[number] = (_speed(samples, now, GRACE), age)
            if not limited and self.lowest_speed and age >= self.window:
                over_window = _speed(samples, now, self.window)
                if over_window < self.lowest_speed:
                    slow[number] = (
                        f"the connection was too slow ({format_rate(over_window)} for "
                        f"{self.window:g} s, under {format_rate(self.lowest_speed)})")
        for key in set(self._samples) - alive:
            del self._samples[key]
        if not limited:
            for number, (speed, age) in speeds.items():
                others = [s for n, (s, a) in speeds.items() if n != number and a >= GRACE]
                others += self._ended
                if number in slow or age < GRACE or not others:
                    continue
                mean = sum(others) / len(others)
                live = connections.get(number)
                left = live.end - live.position if live is not None else 0
                if speed < BEHIND * mean and left > speed * GRACE:  # not about to finish
                    slow[number] = (f"the connection was far slower than the others "
                                    f"({format_rate(speed)} against {format_rate(mean)})")
        room = MAX_REPLACED - self.replaced
        chosen = dict(list(slow.items())[:max(0, room)])
        self.replaced += len(chosen)
        return chosen


def format_rate(speed: float) -> str:
    return f"{format_size(speed)}/s"


def _speed(samples: deque[tuple[float, int]], now: float, seconds: float) -> float:
    """Bytes per second over the last `seconds` (or as long as there are samples)."""
    first_time, first_bytes = samples[0]
    for when, count in samples:
        if when >= now - seconds:
            break
        first_time, first_bytes = when, count
    elapsed = now - first_time
    return (samples[-1][1] - first_bytes) / elapsed if elapsed > 0 else float("inf")
