"""Helpers shared by the emulators: ports, child processes, the `with` protocol."""

from __future__ import annotations

import ctypes
import signal
import socket
import sys
from collections.abc import Callable
from typing import Self

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the child binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _set_parent_death_signal() -> None:
    # Runs in the child between fork and exec. If pytest is killed outright (CI timeout,
    # SIGKILL) no teardown runs; the kernel then sends SIGTERM to the emulator instead of
    # leaving it running. The signal fires when the *thread* that started the child exits,
    # so start emulators from the main thread (pytest fixtures do).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: Linux only, ``None`` elsewhere."""
    return _set_parent_death_signal if sys.platform.startswith("linux") else None


class Emulator:
    """`with Server() as server:` for every emulator: `start()` returns the server, `stop()`
    is safe to call twice."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
