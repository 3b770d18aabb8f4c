"""The watchdog that shuts down sockets whose deadline passed (`http_connections.Watchdog`):
an earlier deadline is kept while the watcher sleeps until a later one, and thousands of
deadlines disarmed in time neither fire nor delay the next."""

from __future__ import annotations

import socket
import time

from laden.sources.http_connections import Watchdog


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether a read on `sock` ends (it was shut down) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_an_earlier_deadline_wakes_a_watcher_sleeping_until_a_later_one() -> None:
    watchdog = Watchdog()
    late_a, late_b = socket.socketpair()
    soon_a, soon_b = socket.socketpair()
    with late_a, late_b, soon_a, soon_b:
        late = watchdog.arm(late_a, 60)
        time.sleep(0.1)  # the watcher now sleeps until the late one's deadline
        soon = watchdog.arm(soon_a, 0.2)
        began = time.monotonic()
        assert _closed_within(soon_a, 5), "the earlier deadline did not fire"
        assert time.monotonic() - began < 3
        assert not watchdog.disarm(soon)  # it fired
        assert watchdog.disarm(late)  # still in time
        assert not _closed_within(late_a, 0.1)


def test_deadlines_disarmed_in_time_never_fire_nor_delay_the_next() -> None:
    watchdog = Watchdog()
    a, b = socket.socketpair()
    with a, b:
        for _ in range(10_000):  # a list of small files: two deadlines per request
            assert watchdog.disarm(watchdog.arm(a, 30))
        assert not _closed_within(a, 0.1)
        token = watchdog.arm(a, 0.2)
        assert _closed_within(a, 5)
        assert not watchdog.disarm(token)
