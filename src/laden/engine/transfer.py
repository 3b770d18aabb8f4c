"""A download's transfer, as the queue starts it: the coordinator, handed the download direction.

The manager builds one with `Transfer(ctx, download)` and calls `start`, `stop`, `join`; the
work is the coordinator's (`coordinator`), what is particular to downloading is the direction's
(`downloading`).
"""

from __future__ import annotations

from .context import EngineContext
from .coordinator import Coordinator
from .download import Download
from .downloading.direction import DownloadDirection

__all__ = ["EngineContext", "Transfer"]


class Transfer(Coordinator):
    def __init__(self, ctx: EngineContext, download: Download) -> None:
        super().__init__(ctx, download, DownloadDirection(download))
