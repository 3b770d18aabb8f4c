"""Planning byte ranges across connections, and splitting them while they run.

A download's file is covered by segments. Segment i owns bytes [start, end); bytes
[start, position) are written. When a connection finishes its segment it takes the far half of
the largest remaining one (never a piece below `min_size`), so the last seconds of a download are
not spent waiting on one slow connection. A split never cuts below `reading_to`, the end of the
read in flight, so two connections never write the same byte.

With a `boundary` (the piece hashes' piece size), cuts fall on its multiples where one is near:
a piece that one connection writes whole is hashed from its buffers, while one that two share
must be joined from both or read back from the disk at the end (`pieces`), which for a 200 MiB
file over 16 connections cut at 12.5 MiB had meant 16 of its 50 pieces, 85 ms of a 0.4 s
download.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ALIGN = 64 * 1024  # split points on 64 KiB boundaries keep writes page-aligned


@dataclass
class Segment:
    start: int
    end: int
    position: int
    reading_to: int = 0
    connection: int | None = None

    @property
    def remaining(self) -> int:
        return self.end - self.position

    @property
    def finished(self) -> bool:
        return self.position >= self.end


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted, non-overlapping, non-empty ranges whose union is the union of `ranges`."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def missing_ranges(size: int, done: list[tuple[int, int]]) -> list[tuple[int, int]]:
    gaps: list[tuple[int, int]] = []
    cursor = 0
    for start, end in merge_ranges(done):
        start, end = max(0, min(start, size)), max(0, min(end, size))
        if start > cursor:
            gaps.append((cursor, start))
        cursor = max(cursor, end)
    if cursor < size:
        gaps.append((cursor, size))
    return gaps


class SegmentPlan:
    """The segments of one download of known size; thread-safe.

    With `piece_size`, the file is cut into pieces of that size (the last may be shorter) that
    are never split and count only whole: a piece interrupted halfway goes back to its first
    byte (`interrupted`). An upload's parts are such pieces: the service keeps a part only
    once all of it arrived.
    """

    def __init__(
        self, size: int, done: list[tuple[int, int]] | None = None, *, min_size: int = 1 << 20,
        piece_size: int | None = None, boundary: int | None = None,
    ) -> None:
        self.size = size
        self.min_size = max(1, min_size)
        self.piece_size = piece_size
        self.boundary = boundary
        self._lock = threading.Lock()
        done = [(max(0, s), min(e, size)) for s, e in merge_ranges(done or [])]
        self._segments: list[Segment] = [Segment(s, e, e, e) for s, e in done if e > s]
        self._pending: list[Segment] = []
        for gap_start, gap_end in missing_ranges(size, done):
            for start, end in _pieces(gap_start, gap_end, piece_size):
                segment = Segment(start, end, start, start)
                self._segments.append(segment)
                self._pending.append(segment)

    def split_for(self, connections: int, *, in_order: int | None = None) -> None:
        """Cut the missing ranges into about `connections` pieces before anyone starts.

        With `in_order`, cut them into pieces of that size instead, taken front to back: the
        finished part then grows from the start of the file, so a checksum can be computed
        while the download runs (see `hashing`).
        """
        with self._lock:
            missing = sum(s.remaining for s in self._pending)
            if (connections <= 1 and not in_order) or not missing or self.piece_size:
                return
            target = in_order or max(self.min_size, -(-missing // connections))
            # Each cut is snapped from where it falls unsnapped, so the rounding never adds up
            # along the file; only when pieces are at least a boundary apart.
            boundary = self.boundary if self.boundary and target >= self.boundary else None
            pieces: list[Segment] = []
            for segment in self._pending:
                cuts, start = [], segment.start
                while segment.end - start > target + self.min_size // 2:
                    start = _aligned(start + target, start, segment.end)
                    cuts.append(start)
                if boundary:
                    cuts = self._snapped(cuts, segment, boundary, target // 2)
                bounds = [segment.start, *cuts, segment.end]
                pieces += [Segment(a, b, a, a) for a, b in zip(bounds, bounds[1:], strict=False)]
            self._segments = [s for s in self._segments if s not in self._pending] + pieces
            self._pending = pieces

    def _snapped(self, cuts: list[int], segment: Segment, boundary: int, slack: int
                 ) -> list[int]:
        """`cuts` moved to the nearest boundary within `slack`, each where that leaves
        `min_size` on both sides (else where it was)."""
        snapped: list[int] = []
        for cut in cuts:
            low = snapped[-1] if snapped else segment.start
            cut = _snap(cut, low, segment.end, boundary, slack, self.min_size)
            if low < cut < segment.end:
                snapped.append(cut)
        return snapped

    def take(self, connection: int) -> Segment | None:
        """The next piece of work for a free connection, or None when nothing is left to split."""
        with self._lock:
            if self._pending:
                segment = self._pending.pop(0)
                segment.connection = connection
                return segment
            if self.piece_size:
                return None  # whole pieces are never split
            victim = max(
                (s for s in self._segments if s.connection is not None and not s.finished),
                key=lambda s: s.end - max(s.position, s.reading_to),
                default=None,
            )
            if victim is None:
                return None
            floor = max(victim.position, victim.reading_to)
            if victim.end - floor < 2 * self.min_size:
                return None
            half = (victim.end - floor) // 2
            # Off the middle by up to a quarter of what is left for a boundary, if both sides
            # keep `min_size`.
            cut = _aligned(floor + half, floor, victim.end)
            if self.boundary:
                cut = _snap(cut, floor, victim.end, self.boundary, half // 2, self.min_size)
            piece = Segment(cut, victim.end, cut, cut, connection)
            victim.end = cut
            self._segments.append(piece)
            return piece

    def release(self, segment: Segment) -> None:
        """Give back a segment whose connection failed; another connection continues it."""
        with self._lock:
            segment.connection = None
            if self.piece_size and not segment.finished:
                segment.position = segment.start
            segment.reading_to = segment.position
            if not segment.finished and segment not in self._pending:
                self._pending.append(segment)
                self._pending.sort(key=lambda s: s.start)

    def interrupted(self, segment: Segment) -> None:
        """Its connection's transfer of `segment` failed: a whole piece starts again from its
        first byte; a segment of an ordinary plan keeps the bytes written."""
        if self.piece_size:
            with self._lock:
                if not segment.finished:
                    segment.position = segment.reading_to = segment.start

    def reserve(self, segment: Segment, want: int) -> int:
        """How many bytes the next read of `segment` may take; a split will not cut below them."""
        with self._lock:
            n = max(0, min(want, segment.end - segment.position))
            segment.reading_to = segment.position + n
            return n

    def advance(self, segment: Segment, written: int) -> None:
        with self._lock:
            segment.position += written
            segment.reading_to = max(segment.reading_to, segment.position)

    def done_ranges(self) -> list[tuple[int, int]]:
        with self._lock:
            return merge_ranges([(s.start, s.position) for s in self._segments])

    def done_prefix(self) -> int:
        """How far the file is finished without a gap from its first byte."""
        with self._lock:
            done = merge_ranges([(s.start, s.position) for s in self._segments])
        return done[0][1] if done and done[0][0] == 0 else 0

    def done_bytes(self) -> int:
        with self._lock:
            return sum(s.position - s.start for s in self._segments)

    def waiting(self) -> list[tuple[int, int]]:
        """The segments planned that no connection has taken yet, as (start, end)."""
        with self._lock:
            return [(s.start, s.end) for s in self._pending]

    def active(self) -> list[Segment]:
        with self._lock:
            return [Segment(s.start, s.end, s.position, s.reading_to, s.connection)
                    for s in self._segments if s.connection is not None and not s.finished]

    @property
    def finished(self) -> bool:
        with self._lock:
            return all(s.finished for s in self._segments)

    def check(self) -> None:
        """Raise AssertionError unless the segments tile [0, size) exactly (used by tests)."""
        with self._lock:
            cursor = 0
            for s in sorted(self._segments, key=lambda s: s.start):
                assert s.start == cursor, f"gap or overlap at {cursor}: {s}"
                assert s.start <= s.position <= s.end, f"position outside segment: {s}"
                cursor = s.end
            assert cursor == self.size, f"segments end at {cursor}, file has {self.size}"


def _pieces(start: int, end: int, size: int | None) -> list[tuple[int, int]]:
    """[start, end) cut at the multiples of `size` (all of it when None)."""
    if not size:
        return [(start, end)]
    cuts = [start, *range((start // size + 1) * size, end, size), end]
    return list(zip(cuts, cuts[1:], strict=False))


def _snap(point: int, low: int, high: int, boundary: int, slack: int, margin: int) -> int:
    """The multiple of `boundary` nearest `point` if it is within `slack` of it and leaves
    `margin` bytes to `low` and to `high`; else `point`."""
    near = (point + boundary // 2) // boundary * boundary
    if abs(near - point) <= slack and near - low >= margin and high - near >= margin:
        return near
    return point


def _aligned(point: int, low: int, high: int) -> int:
    """`point` rounded down to ALIGN when that stays strictly inside (low, high)."""
    aligned = point - point % ALIGN
    return aligned if low < aligned < high else point
