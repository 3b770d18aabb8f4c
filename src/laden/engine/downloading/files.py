"""The two files of one running download, as its steps share them: the remote file as the
last probe described it, where ranges are read from (the byte loop's piece reader), and the
partial file bytes are written into (its piece sink)."""

from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING

from ...core.errors import RemoteChanged
from ..partfile import PartialFile

if TYPE_CHECKING:
    from ...sources.base import RangeReader, RemoteInfo, Source
    from ..download import Download
    from ..hashing import TrailingHasher
    from ..pieces import PieceRecorder
    from ..segments import SegmentPlan


class DownloadFiles:
    def __init__(self, download: Download) -> None:
        self.download = download
        self.source: Source = None  # type: ignore[assignment]  # set before the probe
        self.remote: RemoteInfo = None  # type: ignore[assignment]  # set by the probe
        self.host = ""
        self.part = PartialFile("")
        self.plan: SegmentPlan | None = None
        self.hasher: TrailingHasher | None = None
        self.pieces: PieceRecorder | None = None
        """The piece hashes the connections compute as they write (see `pieces`)."""
        self._renewing = threading.Lock()

    # -- the piece reader --------------------------------------------------------------------

    @property
    def size(self) -> int | None:
        return self.remote.size

    def open_range(self, start: int, end: int | None) -> RangeReader:
        return self.source.open_range(self.remote, start, end, self.download.options)

    def renew(self) -> None:
        """A signed or CDN address expired: ask the original address again, same version only."""
        with self._renewing:
            fresh = self.probe_again()
            if not self.remote.same_version(fresh):
                raise RemoteChanged("the remote file changed while its address was renewed")
            self.remote = dataclasses.replace(self.remote, final_url=fresh.final_url)

    def probe_again(self) -> RemoteInfo:
        return self.source.probe(self.download.record.url, self.download.options)

    def probe_body(self) -> bytes | None:
        """The whole file, when this attempt's probe carried it (see `RemoteInfo.body`)."""
        body = self.remote.body if self.remote is not None else None
        return body if body is not None and len(body) == self.download.record.size else None

    # -- what runs along ---------------------------------------------------------------------

    def drop_hasher(self, *, keep: bool = False) -> dict[str, str] | None:
        """Stop hashing along; with `keep`, first let it finish and return its digests."""
        hasher, self.hasher = self.hasher, None
        if hasher is None:
            return None
        if keep:
            return hasher.digests()
        hasher.abandon()
        return None
