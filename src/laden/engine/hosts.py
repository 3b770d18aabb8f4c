"""A cap on connections per host across all downloads, which a server can lower.

When a host answers 429 or 503 (or 403 once several connections are open) laden drops to fewer
connections and remembers that host's limit for the rest of the session.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class HostLimiter:
    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._in_use: dict[str, int] = {}
        self._learned: dict[str, int] = {}
        self._changed = threading.Condition()

    def set_per_host(self, per_host: int) -> None:
        with self._changed:
            self._per_host = per_host
            self._changed.notify_all()

    def limit(self, host: str) -> int:
        return min(self._per_host, self._learned.get(host, self._per_host))

    def in_use(self, host: str) -> int:
        return self._in_use.get(host, 0)

    def acquire(
        self, host: str, stop: threading.Event, still_needed: Callable[[], bool]
    ) -> bool:
        """Wait for a connection slot; False when stopped or the work no longer needs one."""
        with self._changed:
            while self._in_use.get(host, 0) >= self.limit(host):
                if stop.is_set() or not still_needed():
                    return False
                self._changed.wait(0.2)
            if stop.is_set():
                return False
            self._in_use[host] = self._in_use.get(host, 0) + 1
            return True

    def release(self, host: str) -> None:
        with self._changed:
            self._in_use[host] = max(0, self._in_use.get(host, 0) - 1)
            self._changed.notify_all()

    def lower(self, host: str) -> int:
        """The host wants fewer connections: remember one fewer than are open now."""
        with self._changed:
            new = max(1, min(self.limit(host), self._in_use.get(host, 1)) - 1)
            self._learned[host] = new
            return new
