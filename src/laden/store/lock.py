"""One process owns a state folder at a time.

An advisory `flock` on `laden.lock` is released by the kernel when the process dies, even by
`kill -9`, so a crashed laden never leaves a stale lock behind. The file also says who holds it,
for the message the second process prints.
"""

from __future__ import annotations

import json
import os
import sys
import time

from ..core.errors import JournalError, StateDirBusy

try:
    import fcntl
except ImportError:  # Windows: no flock; one instance is not enforced there
    fcntl = None  # type: ignore[assignment]


LOCK_PATIENCE = 0.3
"""Seconds `acquire` keeps trying before it says another laden owns the folder."""


class StateLock:
    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, "laden.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise JournalError(f"cannot use the state folder {folder}: "
                               f"{exc.strerror or exc}") from None
        if fcntl is not None:
            try:
                _flock_soon(fd)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise StateDirBusy(
                    f"another laden is using {os.path.dirname(self.path)} ({holder}); "
                    "wait for it to finish or stop it first"
                ) from None
        # Only the sub-command: arguments may carry credentials, which never reach the state dir.
        command = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].isalpha() else ""
        info = {"pid": os.getpid(), "command": f"laden {command}".strip(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:
            pass  # a full disk: the lock holds all the same, only the note of who holds it is lost
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing drops the flock


def holder(folder: str) -> str | None:
    """Who owns the state folder now ("pid 12: laden get, since ..."), None when no laden does.

    Asked by `laden list`, which reads the journal beside a running laden: the states a running
    laden journalled are live, those left by one that stopped are not. The shared lock taken to
    ask is held for an instant; `acquire` waits out such an instant instead of failing.
    """
    path = os.path.join(folder, "laden.lock")
    if fcntl is None:
        return None  # nothing to ask: no laden can hold it either
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None  # no laden ever ran here, or it is unreadable: none to name
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return _read_holder(fd)
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken
    return None


def _flock_soon(fd: int) -> None:
    """Take the lock, trying again for a moment: `holder` in another process may hold it
    shared for an instant, and that must not look like another laden at work."""
    deadline = time.monotonic() + LOCK_PATIENCE
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        if not info.get("pid"):
            return "pid unknown"  # taken a moment ago; who took it is not written yet
        return f"pid {info.get('pid')}: {info.get('command', 'laden')}, since {info.get('since')}"
    except (OSError, ValueError):
        return "pid unknown"
