"""The upload direction for a service that takes a file in order, as one stream (GCS, FTP).

It is `direction.UploadDirection` (the pin, a changed file, the commit's journal mark, the
endings) with what such a service needs instead of parts: one connection from the offset the
service reports (`in_order.start`'s plan and sink), the commit by `in_order.finish`, and the
conflict checks against the checksums that service has (`in_order.skip_if_same`,
`in_order.committed_before`). A file of one request goes as for any service (`put`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...core.errors import DestinationExists, LadenError
from ...sources.in_order_uploads import in_order as takes_in_order
from . import in_order
from .direction import UploadDirection

if TYPE_CHECKING:
    from ...sources.registry import SourceRegistry
    from ..seam import Run
    from .state import UploadState


def sends_in_order(sources: SourceRegistry, url: str) -> bool:
    """Whether uploads to `url` go in order, through this direction."""
    try:
        return takes_in_order(sources.uploader_for(url))
    except LadenError:
        return False  # the part direction's `prepare` says what is wrong


class InOrderDirection(UploadDirection):
    """One in-order upload's side of the seam."""

    def prepare(self, run: Run) -> bool:
        if isinstance(self._sink, in_order.StreamSink):
            self._sink.close()  # an attempt before this one's
        upload = self._ready(run)
        if upload is None:
            return False
        if upload.single:
            return self._plan_parts(run, upload)
        self._sink, self.plan = in_order.start(run, upload)
        run.download.plan = self.plan
        return True

    def _committed_before(self, run: Run, upload: UploadState) -> bool:
        return in_order.committed_before(run, upload)

    def _skip_if_there(self, run: Run, upload: UploadState) -> None:
        in_order.skip_if_same(run, upload)  # its own checksums: CRC32C, MD5, or none

    def finish(self, run: Run) -> None:
        upload = self.upload
        assert upload is not None
        if not isinstance(self._sink, in_order.StreamSink):
            super().finish(run)  # one request: sent, and so committed, already
            return
        try:
            in_order.finish(run, upload, self._sink)  # commit, and compare its checksums
        except DestinationExists:
            self.abandon(run)
            raise
        self._mark_done(run, upload.size, "")

    def close(self, run: Run) -> None:
        if isinstance(self._sink, in_order.StreamSink):
            self._sink.close()  # an unfinished chunk (before an abort, which then is final)
        super().close(run)
