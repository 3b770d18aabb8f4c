"""Bandwidth limits: a token bucket that may run into debt, changeable while downloads run."""

from __future__ import annotations

import threading
import time


class TokenBucket:
    """Limits bytes per second across every thread that calls `consume`.

    A reader takes what it read and, if that puts the bucket in debt, sleeps until the debt is
    paid; so the limit holds on average without ever splitting a read.
    """

    def __init__(self, rate: int | None = None) -> None:
        self._lock = threading.Lock()
        self._rate = rate
        self._tokens = 0.0
        self._stamp = time.monotonic()

    @property
    def rate(self) -> int | None:
        return self._rate

    def set_rate(self, rate: int | None) -> None:
        with self._lock:
            self._rate = rate or None
            self._tokens = 0.0
            self._stamp = time.monotonic()

    def read_size(self, wanted: int) -> int:
        """A read size that keeps the flow smooth: about a tenth of a second of the limit."""
        rate = self._rate
        return wanted if rate is None else max(4096, min(wanted, rate // 10))

    def consume(self, amount: int, stop: threading.Event | None = None) -> None:
        if self._rate is None:
            return
        with self._lock:
            rate = self._rate
            if rate is None:
                return
            now = time.monotonic()
            # At most a quarter second of unused allowance carries over, so an idle period
            # does not turn into a burst far above the limit.
            self._tokens = min(rate / 4, self._tokens + (now - self._stamp) * rate) - amount
            self._stamp = now
            wait = -self._tokens / rate if self._tokens < 0 else 0.0
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)


class Limits:
    """The download's own limit and the global one, applied together."""

    def __init__(self, *buckets: TokenBucket) -> None:
        self.buckets = buckets

    @property
    def limited(self) -> bool:
        """True while any bandwidth limit is in force: slowness may be the limit's doing."""
        return any(bucket.rate is not None for bucket in self.buckets)

    def read_size(self, wanted: int) -> int:
        for bucket in self.buckets:
            wanted = bucket.read_size(wanted)
        return wanted

    def consume(self, amount: int, stop: threading.Event | None = None) -> None:
        for bucket in self.buckets:
            bucket.consume(amount, stop)
