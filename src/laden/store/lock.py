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

from ..engine.errors import JournalError, StateDirBusy

try:
    import fcntl
except ImportError:  # Windows: no flock; one instance is not enforced there
    fcntl = None  # type: ignore[assignment]


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
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
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


def _read_holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info.get('pid')}: {info.get('command', 'laden')}, since {info.get('since')}"
    except (OSError, ValueError):
        return "pid unknown"
