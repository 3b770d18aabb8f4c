"""The queue: the downloads a manager holds, their order, and which of them wait or run.

A manager holds its unfinished downloads, and those finished or looked at in this session; the
ones finished in earlier sessions stay in the journal until someone asks for one (`get`), so a
start-up pays only for the unfinished ones. Each download has a place (`Record.position`:
smaller starts first) and at most one transfer.

Starting them is the scheduler's work (see `scheduler`); the queue keeps what it decides from.
`count` is one pass over every download: those running, those waiting (a heap in queue order)
and those paused for want of space. Between two counts `take_next` pops the heap, so a freed
slot costs no pass over hundreds of small files. Every change that may start a download asks
for the next count with `notify`, which wakes the scheduler's thread; `adding_many` holds it
back until a whole list is in.

One re-entrant lock guards it all (`lock`); the condition that wakes the scheduler waits on it.
The order of locks is this one, then a download's own, then the name claims' (see `claims`).
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Container, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, TypeVar

from ..core.errors import UnknownDownload
from ..core.states import State
from .claims import Claims
from .download import Download

if TYPE_CHECKING:
    from ..core.options import DownloadOptions
    from ..store.journal import Journal, Record

Started = TypeVar("Started")


class FinishedIndex:
    """Finished downloads of earlier sessions by (address, folder), read once.

    Downloads finished in this session are held by the queue and found there; the index
    only spares each `add` a pass over the journal's whole history (see `Queue.records_at`,
    which `reruns` asks).
    """

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self._ids: dict[tuple[object, object], list[int]] = {}
        """The finished downloads' ids by (address, folder), read without their records."""
        self._records: dict[tuple[str, str], list[Record]] = {}
        """The records of the places asked for, read when first asked."""
        if journal is None:
            return
        places = journal.finished_places()
        if places is None:  # an SQLite without JSON functions: every record is read
            for record in journal.load_done():
                self._records.setdefault((record.url, record.dest_dir), []).append(record)
            self._journal = None
            return
        for download_id, url, folder in places:
            self._ids.setdefault((url, folder), []).append(download_id)

    def records(self, url: str, folder: str) -> list[Record]:
        found = self._records.get((url, folder))
        if found is None:
            ids = self._ids.get((url, folder), [])
            found = self._journal.load_many(ids) if ids and self._journal is not None else []
            # The row was read as JSON text; the record itself is checked now.
            found = self._records[(url, folder)] = [
                r for r in found if (r.url, r.dest_dir) == (url, folder)]
        return found


class Queue:
    """The downloads of one manager, in queue order, with their turns to run.

    Args:
        journal: where new downloads are recorded and earlier finished ones read from; None
            keeps everything in memory (ids are then counted here).
    """

    def __init__(self, journal: Journal | None) -> None:
        self.lock = threading.RLock()
        """Held for a step of several calls that must not interleave with another thread's
        (finding an unfinished download, else adding one); every method takes it too."""
        self._wake = threading.Condition(self.lock)
        self._journal = journal
        self._downloads: dict[int, Download] = {}
        self._by_address: dict[tuple[str, str], list[Download]] = {}
        self._claims = Claims(self._downloads)
        self._finished_index: FinishedIndex | None = None
        """Earlier sessions' finished downloads, read at the first rerun check."""
        self._last_position = journal.last_position() if journal is not None else 0.0
        self._memory_ids = iter(range(1, 1 << 62))
        self._waiting: list[tuple[float, int, Download]] = []
        self._running: list[Download] = []
        self._holding = 0
        self._recount = True
        self._closed = False

    # -- the downloads held ------------------------------------------------------------------

    def add(self, record: Record, options: DownloadOptions) -> Download:
        """A new download: journalled (which gives it its id) and held from now on."""
        with self.lock:
            if self._journal is not None:
                self._journal.insert(record)
            else:
                record.id = next(self._memory_ids)
            return self.keep(Download(record, options))

    def keep(self, download: Download) -> Download:
        """Hold `download` from now on (a new one, or one read from the journal)."""
        record = download.record
        with self.lock:
            self._downloads[record.id] = download
            self._by_address.setdefault((record.url, record.dest_dir), []).append(download)
            self._claims.note(download)
            self._last_position = max(self._last_position, record.position)
        return download

    def forget(self, download_id: int) -> None:
        """Hold the download no more: its id is unknown from now on."""
        with self.lock:
            download = self._downloads.pop(download_id, None)
            if download is None:
                return
            key = (download.record.url, download.record.dest_dir)
            same = [d for d in self._by_address.get(key, ()) if d is not download]
            if same:
                self._by_address[key] = same
            else:
                self._by_address.pop(key, None)

    def get(self, download_id: int) -> Download:
        """The download with this id; one finished in an earlier session is held from now on.

        Raises:
            UnknownDownload: no download has that id.
        """
        try:
            key = int(download_id)
        except (ValueError, TypeError):
            raise UnknownDownload(f"no download with id {download_id}") from None
        download = self._downloads.get(key) or self._finished_earlier(key)
        if download is None:
            raise UnknownDownload(f"no download with id {download_id}")
        return download

    def holds(self, download: Download) -> bool:
        """Whether `download` is the one held under its id (not removed since)."""
        return self._downloads.get(download.id) is download

    def in_order(self) -> list[Download]:
        """The downloads held, in queue order: the unfinished ones, and those finished or
        looked at in this session."""
        with self.lock:
            return sorted(self._downloads.values(), key=_place)

    def everything(self) -> list[Download]:
        """Every download in queue order: those held, and the ones finished in earlier
        sessions, read from the journal for this call only."""
        with self.lock:
            held = list(self._downloads.values())
            journal = self._journal
            earlier = journal.load_done(self._downloads) if journal is not None else []
        held += (Download.from_journal(r) for r in earlier)
        return sorted(held, key=_place)

    def unfinished(self, url: str, folder: str, filename: str | None,
                   direction: str = "download") -> Download | None:
        """The held download of `url` into `folder` (named `filename`, if given) that is not
        done or cancelled: adding the same again continues it. With `direction` "upload": the
        upload of the file `filename` in `folder` to `url`."""
        # Through the address index: a scan of every download per add made adding a list of
        # hundreds of files quadratic.
        with self.lock:
            for download in self._by_address.get((url, folder), ()):
                if (
                    (filename is None or download.record.filename == filename)
                    and download.record.direction == direction
                    and download.state not in (State.DONE, State.CANCELLED)
                ):
                    return download
        return None

    def records_at(self, url: str, folder: str) -> list[Record]:
        """The records of every download of `url` into `folder`: those held as they are now,
        and those finished in earlier sessions (read once; see `reruns`)."""
        with self.lock:
            if self._finished_index is None:
                self._finished_index = FinishedIndex(self._journal)
            # A download held this session speaks for its record: it may have changed since the
            # index was read (verified, removed, finished).
            found = {r.id: r for r in self._finished_index.records(url, folder)
                     if r.id not in self._downloads}
            found.update((d.id, d.record) for d in self._by_address.get((url, folder), ()))
        # An upload of a file in `folder` to `url` is not a copy downloaded there.
        return [r for r in found.values() if r.direction == "download"]

    def next_position(self) -> float:
        """The place of a download added now: after every other."""
        with self.lock:
            return self._last_position + 1

    def move(self, download_id: int, offset: int) -> tuple[Download, Download] | None:
        """Swap the places of a download and the one `offset` places away (negative: up);
        returns the two, or None when it cannot move that way."""
        with self.lock:
            order = self.everything()
            index = next(i for i, d in enumerate(order) if d.id == download_id)
            other = max(0, min(len(order) - 1, index + offset))
            if other == index:
                return None
            mine, theirs = self.get(order[index].id), self.get(order[other].id)
            mine.record.position, theirs.record.position = (
                theirs.record.position, mine.record.position)
        self.notify()  # the next to start may be another one now
        return mine, theirs

    def choosing_name(self, download: Download) -> AbstractContextManager[Container[str]]:
        """Settle `download.record.dest` inside this block; the container answers which names
        other unfinished downloads hold (see `claims`)."""
        return self._claims.choosing(download)

    def _finished_earlier(self, download_id: int) -> Download | None:
        record = self._journal.load(download_id) if self._journal is not None else None
        if record is None:
            return None
        with self.lock:
            if download_id in self._downloads:  # another thread asked for it first
                return self._downloads[download_id]
            return self.keep(Download.from_journal(record))

    # -- turns to run ------------------------------------------------------------------------

    @contextmanager
    def adding_many(self) -> Iterator[None]:
        """Start nothing until the block ends (see `DownloadManager.adding_many`)."""
        with self.lock:
            self._holding += 1
        try:
            yield
        finally:
            with self._wake:
                self._holding -= 1
                self._wake.notify_all()

    @property
    def adding(self) -> bool:
        """A list is being added (`adding_many`): nothing starts meanwhile."""
        return self._holding > 0

    @property
    def recount_wanted(self) -> bool:
        """Something changed since the last `count`."""
        return self._recount

    @property
    def closed(self) -> bool:
        return self._closed

    def notify(self, recount: bool = True) -> None:
        """Wake the scheduler. `recount=False` only when nothing changed but a freed slot."""
        with self._wake:
            self._recount = self._recount or recount
            if not self._holding:  # adding a list: woken once, when it is all in
                self._wake.notify_all()

    def wait(self, timeout: float) -> None:
        """Until `notify` or `timeout` seconds; the caller holds `lock`."""
        self._wake.wait(timeout)

    def close(self) -> bool:
        """Start nothing any more, and wake the scheduler to end; False when closed already."""
        with self._wake:
            if self._closed:
                return False
            self._closed = True
            self._wake.notify_all()
            return True

    def take_recount(self) -> bool:
        """Whether a count was asked for since the last one; asking is forgotten."""
        with self.lock:
            wanted, self._recount = self._recount, False
            return wanted

    def count(self) -> list[Download]:
        """One pass over every download: which run and which wait, as `take_next` uses them.
        Returns those paused for want of space (the scheduler resumes them when there is)."""
        running, waiting, out_of_space = [], [], []
        with self.lock:
            for download in list(self._downloads.values()):
                if download.transfer is not None:
                    running.append(download)
                elif download.state is State.QUEUED:
                    if not download.held:
                        waiting.append((download.record.position, download.id, download))
                elif download.waiting_for_space and download.state is State.PAUSED:
                    out_of_space.append(download)
            heapq.heapify(waiting)
            self._running, self._waiting = running, waiting
        return out_of_space

    def take_next(self, most: int, start: Callable[[Download], Started]) -> Started | None:
        """The next waiting download, handed to `start` under its lock, when fewer than `most`
        run; what `start` returns (its transfer, which must be set on it), or None.

        A download that changed since the last count is passed over: a change that queues it
        again asks for another count.
        """
        with self.lock:
            self._running = [d for d in self._running if d.transfer is not None]
            if len(self._running) >= most:
                return None
            while self._waiting:
                download = heapq.heappop(self._waiting)[2]
                if not self._ready(download):
                    continue
                with download.lock:
                    started = start(download)
                self._running.append(download)
                return started
        return None

    def _ready(self, download: Download) -> bool:
        return (download.transfer is None and download.state is State.QUEUED
                and not download.held and self.holds(download))


def _place(download: Download) -> float:
    return download.record.position
