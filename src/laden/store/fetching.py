"""Who is fetching what, for the other processes on one state folder.

The ranks of a training job often all run `laden get ADDRESS -o DIR` at once. One of them owns
the state folder (`lock`); the others find it busy. Each address the owner fetches gets a
marker file here, under `fetching/`, with an exclusive `flock` held for as long as the fetch
runs. Another process asking for the same address into the same place takes a shared lock on
the marker, which it gets only once the owner let go, and reads the outcome the owner wrote
into it just before. The kernel drops the owner's lock if it dies, even by `kill -9`; the marker
then holds no outcome and the waiter knows to take over (the journal has the partial file).

Markers carry no address and no credential: only the outcome (paths, sizes, messages) of a
download the waiter asked for with the same address.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: one laden per state folder is not enforced there either
    fcntl = None  # type: ignore[assignment]

FOLDER = "fetching"


def fetch_key(address: str, destination: str, name: str | None = None) -> str:
    """The marker name of one request: the same address into the same place, whoever asks.
    `address` must already be without credentials; the name is a hash, so nothing of the
    address is readable in the folder."""
    identity = "\0".join((address, os.path.abspath(destination), name or ""))
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


class FetchMarker:
    """This process is fetching one request: held from `hold` until `finish` or `release`."""

    def __init__(self, state_dir: str, key: str) -> None:
        self.path = os.path.join(state_dir, FOLDER, key)
        self._fd: int | None = None

    def hold(self) -> bool:
        """Take the marker; False when another process holds it (an owner does not wait)."""
        if fcntl is None:
            return False
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)  # an earlier owner's outcome is not this fetch's
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def finish(self, outcome: dict[str, Any]) -> None:
        """Write the outcome for the waiters, then let them read it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # No fsync: waiters read it from the page cache, and after a machine crash there is
            # no waiter left. (On ext4 an fsync here also waited for every file downloaded.)
            os.pwrite(fd, json.dumps(outcome).encode(), 0)
            os.unlink(self.path)  # waiters hold it open; a late one finds nothing and goes on
        except OSError:
            pass  # a waiter that reads no outcome takes over, and finds the file done
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let go without an outcome (the fetch was paused or failed to start): a waiter takes
        over."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def held(state_dir: str, key: str) -> bool:
    """True when a process is fetching `key` now."""
    if fcntl is None:
        return False
    try:
        fd = os.open(os.path.join(state_dir, FOLDER, key), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def wait_for(state_dir: str, key: str, *, keep_waiting: Callable[[], bool] = lambda: True,
             poll: float = 0.1) -> dict[str, Any] | None:
    """Wait until the owner of `key` lets go, and return the outcome it wrote; None when there
    is no marker, when the owner wrote none (it died or was paused) or when `keep_waiting`
    says to stop."""
    if fcntl is None:
        return None
    try:
        fd = os.open(os.path.join(state_dir, FOLDER, key), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except OSError:
                if not keep_waiting():
                    return None
                time.sleep(poll)  # polled, so Ctrl-C and a progress line stay live
        raw = os.pread(fd, 1 << 20, 0)
    finally:
        os.close(fd)
    try:
        outcome = json.loads(raw) if raw else None
    except ValueError:
        return None
    return outcome if isinstance(outcome, dict) else None
