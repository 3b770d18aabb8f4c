"""What running the same command again will do with a paused download, said when it matters.

"Run the same command again to resume" is true only when the server answers byte ranges and
laden can prove the remote file unchanged (an ETag, a Last-Modified, or your checksum). When it
cannot, the rerun starts from zero: that is said at pause time, and again when the rerun
throws the bytes away, rather than after the fact.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from ..core.snapshots import DownloadInfo
from ..core.units import format_size
from ..engine.partfile import PART_SUFFIX


def fresh_start(info: DownloadInfo) -> str | None:
    """Why a rerun of `info` starts again from zero, or None when it resumes."""
    if info.direction == "upload":
        return None  # the service's parts are what it resumes from: no validator needed
    if not kept_bytes(info):
        return None
    if not info.resumable or info.supports_ranges is False:
        return ("this server cannot resume it (it does not answer byte ranges), so it starts "
                "again from zero; a checksum or an ETag would not help without ranges")
    if not (info.etag or info.last_modified) and not any(
            c.origin == "you" for c in info.checksums):
        return ("the server gives no ETag or Last-Modified to prove the file unchanged, so it "
                "starts again from zero; give --checksum ALGO:HEX to keep the bytes")
    return None


def kept_bytes(info: DownloadInfo) -> int:
    """Bytes a paused download has on disk. The journal counts none for a server without
    ranges (nothing could be resumed), but its partial file still holds them."""
    if info.done:
        return info.done
    try:
        return os.path.getsize(info.dest + PART_SUFFIX)
    except OSError:
        return 0


def tell_paused(infos: Iterable[DownloadInfo]) -> None:
    """The line after Ctrl-C: what the same command will do next time."""
    resumes = True
    for info in infos:
        why = fresh_start(info)
        if why is not None:
            resumes = False
            print(f"laden: {info.name}: paused at {format_size(kept_bytes(info))}; running "
                  f"the same command again: {why}", file=sys.stderr)
    if resumes:
        print("laden: paused; run the same command again to resume", file=sys.stderr)
    else:
        print("laden: paused", file=sys.stderr)


def tell_restarting(infos: Iterable[DownloadInfo]) -> None:
    """Before a paused download is continued: say it if its bytes are about to be dropped."""
    for info in infos:
        why = fresh_start(info)
        if why is not None:
            print(f"laden: {info.name}: {format_size(kept_bytes(info))} already downloaded will be "
                  f"fetched again: {why}", file=sys.stderr)
