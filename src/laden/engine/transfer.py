"""A transfer, as the queue starts it: the coordinator, handed the direction of its record.

The manager builds one with `Transfer(ctx, download)` and calls `start`, `stop`, `join`; the
work is the coordinator's (`coordinator`), what is particular to downloading or uploading is
the direction's (`downloading`, `uploading`).
"""

from __future__ import annotations

from .context import EngineContext
from .coordinator import Coordinator
from .download import Download
from .downloading.direction import DownloadDirection
from .seam import Direction

__all__ = ["EngineContext", "Transfer"]


class Transfer(Coordinator):
    def __init__(self, ctx: EngineContext, download: Download) -> None:
        direction: Direction = DownloadDirection(download)
        if download.record.direction == "upload":
            # Imported here: `laden get` starts without the uploading code (15 ms of start-up).
            from .uploading.direction import UploadDirection
            from .uploading.in_order_direction import InOrderDirection, sends_in_order
            from .uploading.whole_file import WholeFileDirection, sends_whole

            # A service that takes a file whole (the hub) has its own direction, without
            # parts; one that takes it in order (GCS, FTP), the part direction's variant.
            url = download.record.url
            if sends_whole(ctx.sources, url):
                direction = WholeFileDirection(download)
            elif sends_in_order(ctx.sources, url):
                direction = InOrderDirection(download)
            else:
                direction = UploadDirection(download)
        super().__init__(ctx, download, direction)
