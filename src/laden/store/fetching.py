"""What the process that owns a state folder is fetching, for the other processes on it.

The ranks of a training job often all run `laden get ADDRESS -o DIR` at once. One of them owns
the state folder (`lock`); the others find it busy. The owner writes a note, `fetching.json`,
naming (by hash) each request it fetches, and holds an exclusive `flock` on it for as long as it
runs. Another process asking for requests the note names takes a shared lock on the note, which
it gets only once the owner let go, and reads the outcomes the owner wrote into it just before.
The kernel drops the owner's lock if it dies, even by `kill -9`; the note then holds no outcome
and the waiter knows to take over (the journal has the partial files).

One note per owner, not one file per request: creating files costs up to half a millisecond
each on a busy disk, and a list of 5,000 small files must not pay that twice.

The note carries no address and no credential: hashes of the requests, and the outcome
(paths, sizes, messages) of downloads the waiter asked for with the same address.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Collection
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: one laden per state folder is not enforced there either
    fcntl = None  # type: ignore[assignment]

NOTE = "fetching.json"


class NotFetching(Exception):
    """The owner of the state folder is not fetching every request asked about."""


def fetch_key(address: str, destination: str | None, name: str | None = None) -> str:
    """The hash naming one request: the same address into the same place, whoever asks.
    `address` must already be without credentials; `destination` None is the settings'
    download folder."""
    identity = "\0".join((address, os.path.abspath(destination) if destination else "",
                           name or ""))
    # A folder's name is bytes to Linux: one that is not UTF-8 holds lone surrogates here.
    return hashlib.sha256(os.fsencode(identity)).hexdigest()[:32]


class FetchNote:
    """The owner's note, held from `hold` until `finish` or `release`."""

    def __init__(self, state_dir: str) -> None:
        self.path = os.path.join(state_dir, NOTE)
        self._fd: int | None = None
        self._keys: list[str] = []

    def hold(self, keys: Collection[str]) -> bool:
        """Write the note and hold it; False when another process holds it."""
        if fcntl is None:
            return False
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._keys = list(keys)
            _write(fd, {"keys": self._keys})
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def finish(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Write each request's outcome for the waiters, then let them read it."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            # No fsync: waiters read it from the page cache, and after a machine crash there is
            # no waiter left. (On ext4 an fsync here also waited for every file downloaded.)
            _write(fd, {"keys": self._keys, "outcomes": outcomes})
            os.unlink(self.path)  # waiters hold it open; the next owner writes a new one
        except OSError:
            pass  # a waiter that reads no outcome takes over, and finds the files done
        finally:
            os.close(fd)

    def release(self) -> None:
        """Let go without outcomes (the fetch was paused): a waiter takes over."""
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            os.close(fd)


def wait_for(state_dir: str, keys: Collection[str], *, grace: float,
             keep_waiting: Callable[[], bool] = lambda: True,
             on_wait: Callable[[], None] = lambda: None,
             poll: float = 0.05) -> dict[str, dict[str, Any]] | None:
    """Wait for the owner of the state folder to fetch every request in `keys`, and return its
    outcomes (key -> outcome). None when it let go without writing them (it died or was
    paused): the caller should take over.

    Raises:
        NotFetching: no note names all of `keys` within `grace` seconds (or `keep_waiting`
            said to stop before).
    """
    deadline = time.monotonic() + grace
    path = os.path.join(state_dir, NOTE)
    while fcntl is not None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            fd = None
        if fd is not None:
            try:
                note = _read(fd)
                if note is not None and set(keys) <= set(note.get("keys", ())):
                    if _held(fd):
                        on_wait()
                        while _held(fd):
                            if not keep_waiting():
                                raise NotFetching
                            time.sleep(poll)  # polled, so Ctrl-C stays live
                        note = _read(fd)
                    outcomes = (note or {}).get("outcomes")
                    return outcomes if isinstance(outcomes, dict) else None
            finally:
                os.close(fd)
        if time.monotonic() >= deadline or not keep_waiting():
            break
        time.sleep(poll)
    raise NotFetching


def _held(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False


def _write(fd: int, note: dict[str, Any]) -> None:
    data = json.dumps(note, separators=(",", ":")).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read(fd: int) -> dict[str, Any] | None:
    try:
        size = os.fstat(fd).st_size
        note = json.loads(os.pread(fd, size, 0)) if size else None
    except (OSError, ValueError):
        return None  # empty or half written: read again
    return note if isinstance(note, dict) else None
