"""One download for every process that asks for it: the ranks of a training job.

Each rank of a distributed job may run `laden get ADDRESS -o DIR` (or `laden.download`) at
the same moment with the same state folder. The first to take the folder fetches; it marks each
address it fetches (`store.fetching`). The others find the folder busy, see the marks for every
address they asked for, and wait for the owner's outcome instead of failing: the same paths, or
the same error. If the owner dies or is paused, a waiter takes the folder over and resumes from
the journal. A process that asks for something the owner is not fetching still gets
`StateDirBusy`, as before.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..core.config import Config
from ..core.errors import LadenError, Permanent, StateDirBusy, TransferError
from ..core.options import DownloadOptions
from ..core.snapshots import DownloadInfo
from ..core.states import State
from ..core.urls import strip_credentials
from ..store import fetching, paths

GRACE = 3.0
"""Seconds a waiter looks for the owner's marks before it says the folder is busy: the owner
marks its addresses right after it takes the folder, before it asks any server."""


@dataclass(frozen=True)
class Request:
    """What one process asks for: an address into a folder, under a name or the server's."""

    address: str
    destination: str | None
    """The folder; None: the download folder of the settings."""
    name: str | None = None

    @property
    def key(self) -> str:
        return fetching.fetch_key(strip_credentials(self.address), self.destination, self.name)


def asked_for(request: Request, url: str, folder: str) -> bool:
    """Whether a download of `url` into `folder` is one `request` asked for: its address, or
    a file under it (a folder or prefix address), into its folder or one below."""
    address = strip_credentials(request.address)
    if url != address and not url.startswith(address.rstrip("/") + "/"):
        return False
    if request.destination is None:
        return True
    wanted = os.path.abspath(request.destination)
    folder = os.path.abspath(folder)
    return folder == wanted or folder.startswith(wanted.rstrip(os.sep) + os.sep)


def state_folder(state_dir: str | None = None) -> str:
    return state_dir or paths.state_dir()


class Marks:
    """The owner's note of what it fetches, from `hold` until `finish` (or `release`)."""

    def __init__(self, state_dir: str, requests: Iterable[Request]) -> None:
        self._note = fetching.FetchNote(state_dir)
        self._keys = list(dict.fromkeys(r.key for r in requests))

    def hold(self) -> Marks:
        self._note.hold(self._keys)
        return self

    def finish(self, outcomes: dict[str, dict[str, Any]]) -> None:
        """Leave each request's own outcome (see `outcome_of`) for its waiters."""
        self._note.finish(outcomes)

    def release(self) -> None:
        self._note.release()


def wait_for_owner(state_dir: str, requests: Iterable[Request], busy: StateDirBusy, *,
                   keep_waiting: Callable[[], bool] = lambda: True,
                   on_wait: Callable[[], None] = lambda: None) -> dict[str, Any] | None:
    """Wait for the process that owns the state folder to fetch every request, and return its
    outcome for them all. None when it let go without an outcome (it died or was paused): the
    caller tries to take the folder itself.

    Raises:
        StateDirBusy: `busy` again, when the owner is not fetching all of these.
    """
    keys = list(dict.fromkeys(r.key for r in requests))
    try:
        outcomes = fetching.wait_for(state_dir, keys, grace=GRACE, keep_waiting=keep_waiting,
                                     on_wait=on_wait)
    except fetching.NotFetching:
        raise busy from None
    if outcomes is None or not all(isinstance(outcomes.get(k), dict) for k in keys):
        return None
    return combined([outcomes[k] for k in keys])


def combined(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Several requests' outcomes as one: the first failure's code and message, every
    download in request order."""
    failed = next((o for o in outcomes if o.get("exit", 1) != 0), None)
    return {"exit": failed.get("exit", 1) if failed else 0,
            "message": failed.get("message") if failed else None,
            "permanent": bool(failed and failed.get("permanent")),
            "downloads": [d for o in outcomes for d in o.get("downloads", [])]}


def error_of(outcome: dict[str, Any]) -> LadenError | None:
    """The owner's failure as an error of the same kind; None when it succeeded."""
    if outcome.get("exit", 1) == 0:
        return None
    message = str(outcome.get("message") or "the download failed in the process that fetched it")
    return Permanent(message) if outcome.get("permanent") else TransferError(message)


def outcome_of(code: int, infos: Iterable[DownloadInfo]) -> dict[str, Any]:
    """What the owner leaves for the waiters of one request: `code` when one of its downloads
    failed (else 0), the first failure, and each download's destination, size and state
    (nothing a password or signature could be in)."""
    infos = list(infos)
    failed = [i for i in infos if i.state is not State.DONE]
    first = failed[0] if failed else None
    return {
        "exit": (code or 1) if first else 0,
        "message": (first.message or first.state.value) if first else None,
        "permanent": bool(first and first.errors and first.errors[-1].permanent),
        "downloads": [{"dest": i.dest, "size": i.size, "state": i.state.value,
                       "skipped": i.skipped, "message": i.message} for i in infos],
    }


def download(url: str, dest: str = ".", *, options: DownloadOptions | None = None,
             config: Config | None = None, state_dir: str | None = None,
             wait_for_others: bool = True) -> list[str]:
    """Download `url` (a file, or a folder or prefix address) into the folder `dest` and
    return the paths of the finished files, blocking until then.

    Every process that calls this (or runs `laden get`) with the same address, destination
    and state folder at the same time ends with one download: the first fetches, the others
    wait for it and return the same paths, or raise the same error.

    Raises:
        InputError: the address or options are wrong.
        TransferError: a download failed (`Permanent` when trying again cannot help).
        StateDirBusy: another laden owns the state folder and is not fetching this (or
            `wait_for_others` is False).
    """
    from .manager import DownloadManager

    request = Request(url, dest, options.filename if options else None)
    folder = state_folder(state_dir)
    while True:
        try:
            manager = DownloadManager(config, state_dir=folder)
        except StateDirBusy as busy:
            if not wait_for_others:
                raise
            outcome = wait_for_owner(folder, [request], busy)
            if outcome is None:
                continue  # the owner stopped without an outcome: take over from the journal
        else:
            marks = Marks(folder, [request]).hold()
            try:
                ids = manager.add_all(url, dest, options=options)
                infos = [manager.wait(i) for i in ids]
            except BaseException:
                marks.release()
                raise
            finally:
                manager.close()
            outcome = outcome_of(1, infos)
            marks.finish({request.key: outcome})
        error = error_of(outcome)
        if error is not None:
            raise error
        return [d["dest"] for d in outcome["downloads"]]
