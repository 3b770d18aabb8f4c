"""urllib3's connections, with three things http.client does not do on its own.

* Informational answers (`102 Processing`, `103 Early Hints`, ...) before the real one are
  skipped; http.client skips only `100 Continue` and takes a 103 for the answer.
* The answer's headers must be complete within a deadline. The socket's timeout bounds each
  read, not their sum, so a server that sends a byte a second would keep the status line and
  headers coming for hours; a watchdog shuts the socket down when the deadline passes.
* An answer is read through a 64 KiB buffer, not 8 KiB (`READ_BUFFER`).
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import math
import socket
import threading
import time
from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

READ_BUFFER = 64 << 10
"""What an answer is read through. http.client's own 8 KiB took three reads, each a wait
for the socket and a hand-over of the GIL, for the headers and body of a 16 KiB file."""


class _Response(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        # Nothing has been read yet: the reader http.client made is swapped for a larger one
        # (closed, so the socket does not count it as still open).
        self.fp.close()
        self.fp = sock.makefile("rb", READ_BUFFER)

    def _read_status(self) -> tuple[str, int, str]:  # type: ignore[override]
        while True:
            version, status, reason = super()._read_status()
            if not 100 < status < 200 or status == 101:
                return version, status, reason
            # 102, 103 and the like: their headers are hints, the real answer follows. (100 is
            # skipped by http.client itself, 101 ends HTTP on this connection.)
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]


class Watchdog:
    """One thread that shuts down sockets whose deadline has passed."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, socket.socket] = {}
        self._fired: set[int] = set()
        self._tokens = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._until = math.inf
        """The deadline the watching thread sleeps until: an earlier one must wake it, a later
        one need not (a small file's requests each armed two, and woke it twice)."""

    def arm(self, sock: socket.socket, seconds: float) -> int:
        token = next(self._tokens)
        due = time.monotonic() + seconds
        with self._cond:
            self._armed[token] = sock
            heap = self._heap
            if len(heap) > 2 * len(self._armed) + 64:
                # Disarmed deadlines leave the heap when they come due; thousands of requests
                # within one timeout would pile them up until then.
                heap[:] = [entry for entry in heap if entry[1] in self._armed]
                heapq.heapify(heap)
            heapq.heappush(heap, (due, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="laden-http-deadlines",
                                                daemon=True)
                self._thread.start()
            elif due < self._until:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> bool:
        """False when the deadline had already passed and the socket was shut down."""
        with self._cond:
            self._armed.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return False
            return True

    def _watch(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)  # disarmed: forget it
                if not self._heap:
                    self._until = math.inf
                    self._cond.wait()
                    continue
                due, token = self._heap[0]
                left = due - time.monotonic()
                if left > 0:
                    self._until = due
                    self._cond.wait(left)
                    continue
                heapq.heappop(self._heap)
                sock = self._armed.pop(token)
                self._fired.add(token)
                with contextlib.suppress(OSError):  # already closed: nothing waits on it
                    sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()


class HeadersTooSlow(TimeoutError):
    """The answer's headers did not arrive within the deadline (urllib3 reports a read
    timeout for it)."""


class _DeadlineMixin:
    header_deadline: float = 15.0
    sock: Any

    def getresponse(self) -> Any:
        token = WATCHDOG.arm(self.sock, self.header_deadline) if self.sock is not None else 0
        try:
            response = super().getresponse()  # type: ignore[misc]
        except BaseException:
            if token and not WATCHDOG.disarm(token):
                raise HeadersTooSlow(
                    f"no complete answer within {self.header_deadline:g} s") from None
            raise
        if token and not WATCHDOG.disarm(token):
            response.close()
            raise HeadersTooSlow(f"no complete answer within {self.header_deadline:g} s")
        return response


def pool_classes(header_deadline: float) -> dict[str, type[HTTPConnectionPool]]:
    """urllib3 pool classes whose connections skip informational answers and give up on
    headers that take longer than `header_deadline` seconds."""

    class Plain(_DeadlineMixin, HTTPConnection):
        response_class = _Response

    class Secure(_DeadlineMixin, HTTPSConnection):
        response_class = _Response

    Plain.header_deadline = Secure.header_deadline = header_deadline

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class SecurePool(HTTPSConnectionPool):
        ConnectionCls = Secure

    return {"http": PlainPool, "https": SecurePool}
