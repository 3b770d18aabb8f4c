"""What the engine's parts may ask of the engine they work in, declared once, so none of them
imports the `DownloadManager` that puts them together.

`EngineContext` is what a transfer's coordinator asks; `Engine` is what the queue's logic
(scheduling, adding, pausing and resuming, rechecking, reruns, callbacks) asks. The
`DownloadManager` is both.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from ..core.config import Config
    from ..core.options import DownloadOptions
    from ..core.snapshots import DownloadInfo
    from ..sources.registry import SourceRegistry
    from ..store.journal import Journal
    from . import events
    from .download import Download
    from .hosts import HostLimiter
    from .queue import Queue
    from .ratelimit import TokenBucket


class EngineContext(Protocol):
    """What a running transfer asks of the engine."""

    config: Config
    journal: Journal | None
    sources: SourceRegistry
    hosts: HostLimiter
    bandwidth: TokenBucket
    executor: ThreadPoolExecutor

    def emit(self, event: events.Event) -> None: ...
    def tell_progress(self, download: Download, *, last: bool = False) -> None: ...
    # Any: the manager names what it started by the class it built (`transfer.Transfer`).
    def transfer_ended(self, transfer: Any) -> None: ...
    def next_transfer(self) -> Any: ...
    def save(self, download: Download) -> None: ...
    def choosing_name(self, download: Download) -> AbstractContextManager[Container[str]]: ...


class Engine(EngineContext, Protocol):
    """What the queue's logic asks of the engine: its queue, and a few public calls."""

    queue: Queue
    state_dir: str

    def add(self, url: str, dest: str | None = None, *, options: DownloadOptions | None = None,
            group: str | None = None, start: bool = True, again: bool = False,
            rehash: bool = False) -> int: ...
    def resume(self, download_id: int) -> None: ...
    def cancel(self, download_id: int) -> None: ...
    def get(self, download_id: int) -> DownloadInfo: ...
    def subscribe(self, listener: events.Listener, *, progress: bool = True
                  ) -> Callable[[], None]: ...
