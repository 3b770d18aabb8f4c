"""`DownloadManager`: the one public API of the engine, used by the CLI, the TUI and Python.

    from laden import DownloadManager

    with DownloadManager() as manager:
        download_id = manager.add("https://example.com/big.iso", "~/Downloads/")
        info = manager.wait(download_id)
        print(info.state, info.dest)

Every download is journalled in the state folder, so pause, resume and verify work across
restarts and crashes. Listeners get frozen events on engine threads (see `events`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Container, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..core.config import MAX_CONNECTIONS, Config
from ..core.errors import JournalError, LadenError, UnknownDownload
from ..core.options import DownloadOptions
from ..core.snapshots import DownloadInfo
from ..core.states import State
from ..core.units import parse_rate
from ..store.journal import Journal
from . import controlling, event_log, events, queueing, scheduler
from .callbacks import CallbackDispatcher, InfoCallback
from .checking import VerifyResult
from .download import Download
from .hosts import HostLimiter
from .queue import Queue
from .ratelimit import TokenBucket
from .reruns import FinishedCopy
from .transfer import Transfer

if TYPE_CHECKING:
    from ..sources.uploads import WaitingUpload
    from ..store.records import Record
    from .repair import RepairResult
    from .uploading.unfinished import UnfinishedUpload

log = logging.getLogger("laden")


class DownloadManager:
    """Owns the downloads, their threads and the journal of one state folder.

    Args:
        config: engine settings; the defaults when None. `DownloadManager()` does not
            read the settings file; `DownloadManager.from_settings()` does, as the
            command line and the app do.
        state_dir: journal folder; LADEN_STATE_DIR or the platform's state folder when None.
        persist: keep a journal (and hold the state folder's lock); False for throwaway use.
        resume_interrupted: start downloads that were running when laden last stopped.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        state_dir: str | None = None,
        persist: bool = True,
        resume_interrupted: bool = False,
    ) -> None:
        from ..sources.registry import SourceRegistry
        from ..store import paths
        from ..store.lock import StateLock

        self.config = config or Config()
        """The settings in force (`apply_config` changes them)."""
        self.hosts = HostLimiter(self.config.per_host_connections)
        self.bandwidth = TokenBucket(self.config.limit_rate)
        self.sources = SourceRegistry({"config": self.config})
        self.executor = ThreadPoolExecutor(
            max_workers=MAX_CONNECTIONS * 8, thread_name_prefix="laden-connection"
        )
        self._listeners: list[tuple[events.Listener, bool]] = []
        """Each listener, and whether it wants `Progress` events."""
        self._listening = threading.Lock()
        self._all_listeners: tuple[events.Listener, ...] = ()
        self._wanting_progress: tuple[events.Listener, ...] = ()
        self.callbacks = CallbackDispatcher(self)
        """Calls the callbacks given to `add`; started with the first one (see `callbacks`)."""
        self._state_lock: StateLock | None = None
        self.state_dir = state_dir or paths.state_dir()
        """The folder of the journal (and of its lock, while this manager holds it)."""
        if persist:
            self._state_lock = StateLock(self.state_dir)
            self._state_lock.acquire()
        try:
            self.journal: Journal | None = Journal(self.state_dir) if persist else None
            self.queue = Queue(self.journal)
            """The downloads held, their order and their turns (see `queue`)."""
            if self.journal is not None:
                scheduler.load(self, resume_interrupted)
        except BaseException:
            if self._state_lock is not None:
                self._state_lock.release()
            raise
        self._scheduler = scheduler.Scheduler(self)
        self._scheduler.start()

    @classmethod
    def from_settings(cls, path: str | None = None, **kwargs: Any) -> DownloadManager:
        """A manager with the values of the settings file (`config.toml` in the platform's
        config folder, or `LADEN_CONFIG_DIR`), the way `laden get` and the app start one.

        Args:
            path: another settings file; a missing file means the defaults.
            **kwargs: passed on to `DownloadManager` (`state_dir`, `persist`, ...).

        Raises:
            SettingsError: the file cannot be read, or holds a value or a key that is wrong;
                the message names the file and the line.
        """
        from ..store import settings

        return cls(settings.load(path), **kwargs)

    # -- adding ------------------------------------------------------------------------------

    def add(
        self,
        url: str,
        dest: str | None = None,
        *,
        options: DownloadOptions | None = None,
        group: str | None = None,
        start: bool = True,
        again: bool = False,
        rehash: bool = False,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        **option_fields: Any,
    ) -> int:
        """Queue one download and return its id.

        Running the same address to the same place again continues the unfinished download
        instead of starting a second one, and returns the finished one whose file is still
        there (an `AlreadyDownloaded` event says so, and what was checked; see `reruns`).

        `on_progress(info)` and `on_done(info)` are called with a `DownloadInfo` on the
        manager's callback thread ("laden-callbacks"), never on the threads that move bytes:
        `on_progress` at most four times a second, with the newest snapshot; `on_done` once,
        when the download is done, failed or cancelled (`info.state` says which), at once
        when it already is. An exception in one is logged and changes nothing else.

        Args:
            url: the address: http(s), ftp(s), s3, gs, az or hf.
            dest: a folder (an existing one, or a path ending in a separator) or a file
                path; None: `Config.download_dir`, or your Downloads folder.
            options: this download's options, as one object.
            group: the manifest or batch it belongs to (`DownloadInfo.group`).
            start: False adds it paused.
            again: download it even when a finished copy is there.
            rehash: hash a finished copy before keeping it, instead of trusting its size.
            on_progress: called with the newest snapshot while it runs.
            on_done: called once with the final snapshot.
            **option_fields: `DownloadOptions` fields, instead of `options` or over it.

        Raises:
            InputError: the address or an option is wrong; nothing was queued.
        """
        download_id = queueing.add(self, url, dest, options=options, group=group, start=start,
                                   again=again, rehash=rehash, option_fields=option_fields)
        if on_progress is not None or on_done is not None:
            self.callbacks.watch(download_id, on_progress, on_done)
        return download_id

    def add_all(
        self,
        url: str,
        dest: str | None = None,
        *,
        options: DownloadOptions | None = None,
        group: str | None = None,
        start: bool = True,
        again: bool = False,
        rehash: bool = False,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        **option_fields: Any,
    ) -> list[int]:
        """Like `add`, but a folder or prefix address becomes one download per file in it;
        the callbacks are called for each of them."""
        download_ids = queueing.add_all(self, url, dest, options=options, group=group,
                                        start=start, again=again, rehash=rehash,
                                        option_fields=option_fields)
        if on_progress is not None or on_done is not None:
            for download_id in download_ids:
                self.callbacks.watch(download_id, on_progress, on_done)
        return download_ids

    def add_upload(
        self,
        path: str,
        url: str,
        *,
        options: DownloadOptions | None = None,
        conflict: str = "overwrite",
        on_change: str = "stop",
        group: str | None = None,
        start: bool = True,
        on_progress: InfoCallback | None = None,
        on_done: InfoCallback | None = None,
        **option_fields: Any,
    ) -> int:
        """Queue the upload of the local file `path` to `url` and return its id.

        It is a transfer like a download: listed, paused, resumed, removed, waited for and
        watched the same way (`DownloadInfo.direction` is "upload", `dest` the local file).
        The file is pinned now (size, modification time, inode): if it changes before the
        upload commits, nothing is committed and `on_change` decides what follows. Adding the
        same file to the same address again continues the unfinished upload.

        Args:
            path: the local file.
            url: where it goes: `s3://bucket/key`, `az://container/blob` (or an Azure blob
                https address), `azureml://datastores/NAME/paths/PATH`, `gs://bucket/object`,
                `hf://[TYPE/]OWNER/REPO[@REVISION]/PATH`, `ftp://` or `ftps://host/path`.
            options: credentials, endpoint, connections, rate limit, as for downloads.
            conflict: when `url` exists: "overwrite"; "skip" when it has the file's size and
                checksum already (each checksum the service keeps: CRC32C, MD5, the hub's
                SHA-256 or git blob id); "fail" (the service refuses the commit, or laden
                looks first where it cannot, FTP).
            on_change: when the file changes before the commit: "stop" (the upload fails
                and says so; adding it again with "restart" goes on) or "restart" (what was
                sent is aborted and the upload starts again from the first byte, saying why).
            group: as for `add`.
            start: False adds it paused.
            on_progress: as for `add`.
            on_done: as for `add`.
            **option_fields: `DownloadOptions` fields, instead of `options` or over it.

        Raises:
            InputError: the file is missing, the address or an option is wrong, or laden
                cannot upload to that service; nothing was queued.
        """
        from .uploading.adding import add_upload

        upload_id = add_upload(self, path, url, options=options, group=group, start=start,
                               conflict=conflict, on_change=on_change,
                               option_fields=option_fields)
        if on_progress is not None or on_done is not None:
            self.callbacks.watch(upload_id, on_progress, on_done)
        return upload_id

    def add_uploads(
        self,
        paths: list[str],
        url: str,
        *,
        glob: str | None = None,
        options: DownloadOptions | None = None,
        conflict: str = "overwrite",
        on_change: str = "stop",
        group: str | None = None,
        start: bool = True,
        **option_fields: Any,
    ) -> list[int]:
        """Queue one upload per file: `paths` are files or folders (their files keep their
        layout under `url`, a prefix); `glob` picks the files of folders by their path
        inside them. Every file is checked before any upload is queued (see `add_upload`)."""
        from .uploading.adding import add_upload, targets

        chosen = targets(paths, url, glob)
        return [add_upload(self, path, target, options=options, group=group, start=start,
                           conflict=conflict, on_change=on_change,
                           option_fields=dict(option_fields))
                for path, target in chosen]

    def unfinished_uploads(self) -> list[UnfinishedUpload]:
        """The uploads that began an upload in parts at their service and never committed
        it: paused, failed or interrupted, their parts stored (and billed) meanwhile."""
        from .uploading.unfinished import unfinished_uploads

        return unfinished_uploads(d.record for d in self.queue.everything())

    def unfinished_at(self, url: str, options: DownloadOptions | None = None, *,
                      besides: Iterable[Record] | None = None) -> list[WaitingUpload]:
        """The unfinished uploads in parts the service holds under `url` (a bucket, or a
        prefix) that laden did not begin: another tool's, or ones laden forgot. `besides`: the
        records whose uploads are laden's (this manager's, by default; `laden list` passes the
        journal's, read without its lock).

        Raises:
            InputError: the service cannot list them (or laden cannot upload there).
            LadenError: the service could not be asked.
        """
        from .uploading.unfinished import at_service

        records = (list(besides) if besides is not None
                   else [d.record for d in self.queue.everything()])
        return at_service(self.sources, url, options or DownloadOptions(), records)

    def finished_uploads(self, group: str | None = None) -> list[DownloadInfo]:
        """The finished uploads (of `group`, if given) whose local file is still the one sent:
        its size, modification time and inode as they were pinned. A rerun may keep these
        rather than send them again."""
        from .uploading.finished import unchanged

        return [d.info() for d in unchanged(self.queue.everything(), group)]

    def abort_upload(self, download_id: int) -> UnfinishedUpload | None:
        """Abort the upload's unfinished upload at its service and forget the upload (as
        `remove` does, but a failure to abort raises and keeps it, to try again).

        Returns:
            What was aborted; None when the upload held nothing at the service.

        Raises:
            LadenError: the service could not be asked or refused; nothing was forgotten.
        """
        from .uploading.unfinished import abort

        return abort(self, download_id)

    def find_finished(
        self,
        url: str,
        dest: str | None = None,
        *,
        options: DownloadOptions | None = None,
        rehash: bool = False,
    ) -> FinishedCopy | None:
        """The finished download `add(url, dest)` would return instead of fetching again, or
        None (see `reruns`). Ask before adding to offer a choice, as the app does."""
        return queueing.find_finished(self, url, dest, options or DownloadOptions(),
                                      rehash=rehash)

    def adding_many(self) -> AbstractContextManager[None]:
        """Add a list of downloads before any of them starts: `with manager.adding_many(): ...`.

        Started one by one, the first downloads run while the rest are still being added, and
        with hundreds of small files each add then waits for the GIL behind the running
        transfers (about 5 ms each: 500 files took 2.7 s just to queue).
        """
        return self.queue.adding_many()

    # -- controlling -------------------------------------------------------------------------

    def pause(self, download_id: int) -> bool:
        """Pause a queued or running download; False when it is not paused (it is done,
        failed, cancelled, paused already, or has every byte and is finishing)."""
        return controlling.pause(self, download_id)

    def resume(self, download_id: int) -> None:
        """Queue a paused, failed or cancelled download again; it goes on from the bytes on
        disk when the remote file is unchanged. Nothing happens to a done or running one."""
        controlling.resume(self, download_id)

    def pause_all(self) -> None:
        """Pause every queued and running download."""
        for download in self.queue.in_order():
            self.pause(download.id)

    def resume_all(self) -> None:
        """Resume every download that is not done."""
        with self.adding_many():  # one count of the queue, not one per download
            for download in self.queue.in_order():
                if download.state is not State.DONE:
                    self.resume(download.id)

    def cancel(self, download_id: int) -> None:
        """Stop for good and delete the partial file; the entry stays in the list."""
        controlling.cancel(self, download_id)

    def remove(self, download_id: int, delete_file: bool = False) -> None:
        """Forget a download; its partial file goes too, the finished file only if asked."""
        controlling.remove(self, download_id, delete_file)

    def update_credentials(self, download_id: int, options: DownloadOptions) -> None:
        """Give a download (resumed from the journal) its credentials and headers again."""
        download = self._get(download_id)
        with download.lock:
            download.options = download.options.merged(options)

    def move(self, download_id: int, offset: int) -> None:
        """Move a download up (negative) or down (positive) in the queue."""
        moved = self.queue.move(download_id, offset)
        if moved is None:
            return
        for download in moved:
            self.save(download)
        for download in moved:
            self.emit(events.Progress(download.id, download.info()))

    def set_limit_rate(self, rate: int | str | None, download_id: int | None = None) -> None:
        """Change a bandwidth limit while downloads run (None: unlimited)."""
        value = parse_rate(rate) if not isinstance(rate, int) else rate
        if download_id is None:
            self.apply_config(self.config.replace(limit_rate=value) if value else
                              dataclasses.replace(self.config, limit_rate=None))
            return
        download = self._get(download_id)
        with download.lock:
            download.options = dataclasses.replace(download.options, limit_rate=value)
            download.record.options = download.options.to_journal()
            if download.transfer is not None:
                download.transfer.own_limit.set_rate(value)
        self.save(download)

    def apply_config(self, config: Config) -> None:
        """Use new settings now: limits and concurrency change for running downloads too."""
        self.config = config
        self.hosts.set_per_host(config.per_host_connections)
        self.bandwidth.set_rate(config.limit_rate)
        self.queue.notify()

    # -- reading -----------------------------------------------------------------------------

    def get(self, download_id: int) -> DownloadInfo:
        """A snapshot of the download: state, size, bytes done, speed, checksums, errors.

        Raises:
            UnknownDownload: no download has that id (every method taking an id raises it).
        """
        return self._get(download_id).info()

    def state(self, download_id: int) -> State:
        """The download's state alone: much cheaper than `get` when that is all you need."""
        return self._get(download_id).state

    def list(self, *, done: bool = True) -> list[DownloadInfo]:
        """Every download in queue order. `done=False` leaves out the finished ones, which is
        much cheaper after a long history: finished ones are read from the journal."""
        if not done:
            return [d.info() for d in self.queue.in_order() if d.state is not State.DONE]
        return [d.info() for d in self.queue.everything()]

    def find(self, path: str) -> DownloadInfo | None:
        """The download whose finished file is at `path`."""
        path = os.path.abspath(os.path.expanduser(path))
        for download in self.queue.everything():
            if download.record.dest and os.path.abspath(download.record.dest) == path:
                return download.info()
        return None

    def wait(self, download_id: int, timeout: float | None = None) -> DownloadInfo:
        """Block until the download is done, failed, cancelled or paused; returns its snapshot."""
        download = self._get(download_id)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if download.settled():
                return download.info()
            if not self.queue.holds(download):
                raise UnknownDownload(f"download {download_id} was removed")
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return download.info()
            download.finished_event.wait(0.2 if remaining is None else min(0.2, remaining))

    async def wait_async(self, download_id: int, timeout: float | None = None) -> DownloadInfo:
        """`wait` for asyncio code: the event loop goes on meanwhile, and cancelling this
        leaves the download running. `AsyncDownloadManager` has the whole API that way."""
        from .aio_events import wait  # only for callers that use it: asyncio costs 15 ms

        return await wait(self, download_id, timeout)

    def verify(
        self, download_id: int, algorithm: str | None = None, expected: str | None = None,
        *, record: bool | None = None,
    ) -> VerifyResult:
        """Check a finished file again: its size, and its checksum against `expected`, against
        what the journal recorded, or (the first time) record one for later checks. A model
        file's structure is checked too (see `formats`), whatever the `format_check` setting.
        A finished upload is checked at its service instead: its local file is read again and
        its size and every checksum the service keeps of the object compared with the
        object's (`expected` is refused then; see `uploading.verifying`).

        `record`: let the result change the download's state (a mismatch fails it, so a
        resume fetches it again). By default only a check against what the journal recorded
        does; a checksum you typed is reported and changes nothing, since it may be the
        wrong one.
        """
        from . import rechecking  # with what an upload's check needs: not for every start

        return rechecking.verify(self, download_id, algorithm, expected, record=record)

    def repair(self, download_id: int) -> RepairResult:
        """Fetch again only the damaged pieces of a finished file, then check it whole.

        The piece hashes recorded while it downloaded say which 4 MiB pieces are damaged.
        When the remote file is still that version (size and validators, compared as a resume
        compares them), each is fetched with one range request, checked against its hash and
        written in place; then the whole file is checked against its checksum (or its piece
        hashes when it has none), and the download is done or failed by that verdict.
        `RepairResult.message` says what was done, or why nothing could be: a download
        journalled without piece hashes (by an older laden) cannot be repaired.
        """
        from . import rechecking

        return rechecking.repair(self, download_id)

    # -- events ------------------------------------------------------------------------------

    def subscribe(self, listener: events.Listener, *, progress: bool = True
                  ) -> Callable[[], None]:
        """Call `listener(event)` for every event, on engine threads; returns an unsubscribe.

        `progress=False` leaves out `Progress` events: when no listener wants them, the
        transfers make none.
        """
        with self._listening:
            self._listeners.append((listener, progress))
            self._sort_listeners()

        def unsubscribe() -> None:
            with self._listening:
                for entry in self._listeners:
                    if entry[0] == listener:
                        self._listeners.remove(entry)
                        self._sort_listeners()
                        break

        return unsubscribe

    def _sort_listeners(self) -> None:
        """Which listeners hear which events, as tuples `emit` goes over without a lock. The
        caller holds `_listening`."""
        self._all_listeners = tuple(listener for listener, _progress in self._listeners)
        self._wanting_progress = tuple(
            listener for listener, progress in self._listeners if progress)

    def emit(self, event: events.Event) -> None:
        event_log.log_event(event)  # the log tells what the listeners are told
        listeners = (self._wanting_progress if isinstance(event, events.Progress)
                     else self._all_listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not break a download
                log.exception("event listener failed on %s", type(event).__name__)

    def tell_progress(self, download: Download, *, last: bool = False) -> None:
        """A transfer's look at its download: a `Progress` event for the listeners that want
        one, unless one was told less than a moment ago (see `Download.tick`). `last`: the
        transfer's last look, always told. Nothing is made when no listener wants progress."""
        if not self._wanting_progress:
            return
        tick = download.tick(time.monotonic(), last=last)
        if tick is not None:
            self.emit(events.Progress.of_tick(tick, download))

    # -- the queue ---------------------------------------------------------------------------

    def transfer_ended(self, transfer: Transfer) -> None:
        self._scheduler.transfer_ended(transfer)

    def next_transfer(self) -> Transfer | None:
        return self._scheduler.next_in_this_thread()

    def choosing_name(self, download: Download) -> AbstractContextManager[Container[str]]:
        """Settle `download.record.dest` inside this block; the container answers which names
        other unfinished downloads hold (see `claims`)."""
        return self.queue.choosing_name(download)

    def save(self, download: Download) -> None:
        if self.journal is None:
            return
        try:
            with download.lock:
                self.journal.update(download.record)
        except JournalError as exc:
            # The journal's disk is full or failing. Its record stays the last one written,
            # which lags behind and so never claims bytes that are not on disk; this session
            # goes on from memory, and a download that needs checkpoints pauses on its own.
            log.warning("%s", exc)

    # -- closing -----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop every transfer, keeping its state so the next start resumes it."""
        if not self.queue.close():
            return
        transfers = [d.transfer for d in self.queue.in_order() if d.transfer is not None]
        for transfer in transfers:
            transfer.stop("shutdown")
        for transfer in transfers:
            transfer.join(30)
        self.callbacks.close()  # after the transfers: their last events are told
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.sources.close()
        if self.journal is not None:
            self.journal.close()
        if self._state_lock is not None:
            self._state_lock.release()

    def __enter__(self) -> DownloadManager:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- helpers -----------------------------------------------------------------------------

    def _get(self, download_id: int) -> Download:
        return self.queue.get(download_id)


__all__ = ["DownloadManager", "LadenError", "VerifyResult"]
