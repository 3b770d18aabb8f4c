"""Piece hashes: a fast hash of every 4 MiB piece of a file, kept in the journal.

With them, a later check says which byte ranges of a finished file are damaged, instead of
only "mismatch", and a repair fetches those pieces alone (see `repair`).

The hash is xxh3_64 (xxhash): 8 bytes a piece, so a 100 GiB file's hashes take 270 KB of the
journal. It only has to notice damage to bytes laden itself received, not resist an attacker:
the whole-file checksum does that. On the 2-core benchmark VM, over 4 MiB pieces of a 256 MiB
buffer, xxh3_64 hashed at 12 to 23 GB/s on one core (the VM's memory bandwidth varies) and
BLAKE3 at 3.6 GB/s: BLAKE3 would take a third of a core from a 1.2 GB/s download, xxh3 a
tenth at most. xxhash's hashing object releases the GIL while it hashes; its one-shot functions
(`xxh3_64_digest`) hold it, so they are never used here.

Where the hashes come from: each connection hashes the bytes it writes, from the buffer it read
them into (`PieceStream`), whenever one run of its writes covers a piece from its first byte to
its last. That is nearly every piece: segments are cut on piece boundaries where one is near
(`segments`). A piece cut by splits is joined: the connection that wrote its first bytes
leaves its hash state with the recorder, those that wrote the rest keep their bytes (less than
a piece) until their run reaches the piece's end or stops, and the hash is finished once the
runs meet. The pieces no run covered (written before a resume, moved by splice, carried by the
probe's answer) are hashed from the partial file before the final rename
(`PieceRecorder.complete`): reading them back from the disk is what the joins save, as it sits
between the last byte and the rename.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .verify import Hasher

PIECE_SIZE = 4 << 20
"""Bytes a piece hash covers (the last piece is shorter): a repair fetches at least this much."""
HELD_AT_MOST = 16 << 20
"""Bytes one download keeps for joins at most; past that a cut piece is read back at the end.
Cuts fall inside a piece only when less than two pieces are left to split, near the end."""
ALGORITHM = "xxh3_64"
DIGEST_SIZE = 8


def _xxh3() -> Any:
    import xxhash  # imported on first use: `laden list` and the app's start never need it

    return xxhash


def digest(data: Any) -> bytes:
    """The piece hash of `data` (a whole piece), computed with the GIL released."""
    hasher = _xxh3().xxh3_64()
    hasher.update(data)
    return bytes(hasher.digest())


@dataclass(frozen=True)
class PieceHashes:
    """The hash of each piece of a file, as the journal keeps them."""

    algorithm: str
    piece_size: int
    digests: bytes
    """The pieces' digests, DIGEST_SIZE bytes each, one after another."""

    @property
    def count(self) -> int:
        return len(self.digests) // DIGEST_SIZE

    def digest(self, index: int) -> bytes:
        return self.digests[index * DIGEST_SIZE : (index + 1) * DIGEST_SIZE]

    def span(self, index: int, size: int) -> tuple[int, int]:
        """Bytes [start, end) of piece `index` in a file of `size` bytes."""
        start = index * self.piece_size
        return start, min(size, start + self.piece_size)

    def to_journal(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "piece_size": self.piece_size,
                "digests": base64.b64encode(self.digests).decode("ascii")}

    @classmethod
    def from_journal(cls, data: dict[str, Any], size: int | None) -> PieceHashes:
        """The piece hashes a journal record holds.

        Raises:
            ValueError: they do not describe a file of `size` bytes, or use an algorithm this
                laden does not know (a newer laden's); one short line.
        """
        if data.get("algorithm") != ALGORITHM:
            raise ValueError("piece hashes are of a kind this laden does not know "
                             f"({str(data.get('algorithm'))[:20]})")
        piece_size = data.get("piece_size")
        if not isinstance(piece_size, int) or piece_size <= 0:
            raise ValueError("piece hashes without a piece size")
        try:
            digests = base64.b64decode(str(data.get("digests", "")), validate=True)
        except ValueError:
            raise ValueError("piece hashes that are not base64") from None
        hashes = cls(ALGORITHM, piece_size, digests)
        if size is None or hashes.count != pieces_in(size, piece_size) or (
            len(digests) % DIGEST_SIZE
        ):
            raise ValueError(f"{len(digests)} bytes of piece hashes do not fit a file of "
                             f"{size} bytes")
        return hashes


def pieces_in(size: int, piece_size: int = PIECE_SIZE) -> int:
    return -(-size // piece_size)


def of_record(record: Any) -> tuple[PieceHashes | None, str]:
    """A record's piece hashes, or None and why there are none, in words for the user."""
    if not record.pieces:
        return None, ("it has no piece hashes: it was downloaded by a laden that did not record "
                      "them (older than this one), so laden cannot tell which bytes are damaged")
    try:
        return PieceHashes.from_journal(record.pieces, record.size), ""
    except ValueError as exc:
        return None, f"its {exc}"


class PieceRecorder:
    """Collects the piece hashes of one download while it runs; thread-safe."""

    def __init__(self, size: int, piece_size: int = PIECE_SIZE,
                 done: Iterable[tuple[int, int]] = ()) -> None:
        """`done`: the byte ranges written before this attempt, which no run will feed."""
        self.size = size
        self.piece_size = piece_size
        self._digests: list[bytes | None] = [None] * pieces_in(size, piece_size)
        # A split piece, as its runs end: where its first bytes end and their hash so far;
        # the bytes of the others, by where they start.
        self._heads: dict[int, tuple[int, Hasher]] = {}
        self._parts: dict[int, dict[int, bytearray]] = {}
        self._held = 0  # bytes kept for joins, in `_parts` and in the streams
        # Pieces with bytes from before: no run will hash their first bytes, so their later
        # bytes are never kept for a join (they are read back, as they were written then).
        self._begun = {i for start, end in done if end > start
                       for i in range(start // piece_size, (end - 1) // piece_size + 1)}
        self._lock = threading.Lock()

    def keep(self, index: int, n: int) -> bool:
        """Whether a run that began inside piece `index` may keep its `n` bytes to the piece's
        end for a join: not for a piece begun before, nor past HELD_AT_MOST in all."""
        with self._lock:
            if index in self._begun or self._held + n > HELD_AT_MOST:
                return False
            self._held += n
            return True

    def let_go(self, n: int) -> None:
        """A stream's kept bytes that will not be joined (its run broke off early)."""
        with self._lock:
            self._held -= n

    def stream(self) -> PieceStream:
        """A cursor for one run of writes at consecutive offsets (one connection's segment)."""
        return PieceStream(self)

    def note(self, index: int, digest: bytes) -> None:
        with self._lock:
            self._digests[index] = digest

    def head_written(self, index: int, end: int, hasher: Hasher) -> None:
        """Piece `index`'s bytes from its first up to `end` were written, and `hasher` hashed
        them; the rest joins them as it comes."""
        with self._lock:
            self._join(index, end, hasher)

    def part_written(self, index: int, start: int, data: bytearray, kept: int) -> None:
        """Piece `index`'s bytes from `start` (past its first) were written: `data`, for which
        `kept` bytes were counted by `keep`."""
        with self._lock:
            self._held -= kept - len(data)  # a run that stopped short keeps less
            head = self._heads.pop(index, None)
            if head is not None and head[0] == start:
                self._held -= len(data)
                head[1].update(data)
                self._join(index, start + len(data), head[1])
                return
            if head is not None:
                self._heads[index] = head
            self._parts.setdefault(index, {})[start] = data

    def _join(self, index: int, end: int, hasher: Hasher) -> None:
        """With the lock held: feed `hasher` the parts that follow `end`, and note the digest
        once it reaches the piece's end."""
        parts = self._parts.get(index, {})
        while end in parts:
            data = parts.pop(end)
            self._held -= len(data)
            hasher.update(data)
            end += len(data)
        if end >= min(self.size, (index + 1) * self.piece_size):
            self._parts.pop(index, None)
            self._digests[index] = hasher.digest()
        else:
            self._heads[index] = (end, hasher)

    def missing(self) -> list[int]:
        with self._lock:
            return [i for i, d in enumerate(self._digests) if d is None]

    def complete(self, path: str, body: bytes | None = None) -> PieceHashes:
        """Every piece's hash: the ones no run of writes covered are hashed now, from `body`
        (the whole file, when the probe carried it) or read back from the file at `path`."""
        with self._lock:
            self._heads.clear()
            self._parts.clear()
            self._held = 0
        missing = self.missing()
        if missing:
            if body is not None:
                for index in missing:
                    start = index * self.piece_size
                    self.note(index, digest(memoryview(body)[start : start + self.piece_size]))
            else:
                with open(path, "rb", buffering=0) as handle:
                    buffer = memoryview(bytearray(self.piece_size))
                    for index in missing:
                        n = _read_at(handle.fileno(), buffer, index * self.piece_size)
                        self.note(index, digest(buffer[:n]))
        with self._lock:
            return PieceHashes(ALGORITHM, self.piece_size, b"".join(self._digests))  # type: ignore[arg-type]


class PieceStream:
    """Hashes one connection's run of writes, piece by piece, from the bytes as written.

    Bytes fed at an offset other than the one after the last bytes start a new run. A piece
    the run covers whole is hashed here; one it begins is handed to the recorder as a hash
    state when the run ends (`close`), one it joins after its first byte as the bytes to its
    end, for the recorder to join. Pieces nothing could hash stay missing in the recorder,
    never wrong.
    """

    __slots__ = ("_recorder", "_next", "_hasher", "_index", "_left", "_tail", "_tail_at",
                 "_kept")

    def __init__(self, recorder: PieceRecorder) -> None:
        self._recorder = recorder
        self._next = -1
        self._hasher: Hasher | None = None
        self._index = 0
        self._left = 0
        self._tail: bytearray | None = None  # a piece's bytes from where this run began inside it
        self._tail_at = 0
        self._kept = 0  # bytes counted for the tail by the recorder (`keep`)

    def feed(self, offset: int, view: memoryview) -> None:
        """`view` holds the bytes just written at `offset`."""
        recorder = self._recorder
        piece = recorder.piece_size
        if offset != self._next:
            self._drop_tail()
            self._hasher = None
            if offset % piece and offset < recorder.size:  # a run that begins inside a piece
                left = min(piece - offset % piece, recorder.size - offset)
                if recorder.keep(offset // piece, left):
                    self._tail, self._tail_at = bytearray(), offset
                    self._index, self._left, self._kept = offset // piece, left, left
        n = len(view)
        self._next = offset + n
        at = 0
        while at < n:
            if self._tail is not None:
                take = min(n - at, self._left)
                self._tail += view[at : at + take]
                self._left -= take
                at += take
                if not self._left:
                    recorder.part_written(self._index, self._tail_at, self._tail, self._kept)
                    self._tail = None
                continue
            if self._hasher is None:
                into = (offset + at) % piece
                if into:  # this run joined the piece after its first byte
                    at += piece - into
                    continue
                start = offset + at
                self._index = start // piece
                self._left = min(piece, recorder.size - start)
                if self._left <= 0:
                    return
                self._hasher = _xxh3().xxh3_64()
            take = min(n - at, self._left)
            self._hasher.update(view[at : at + take])  # type: ignore[union-attr]
            self._left -= take
            at += take
            if not self._left:
                recorder.note(self._index, self._hasher.digest())  # type: ignore[union-attr]
                self._hasher = None

    def close(self) -> None:
        """The run ended: a piece it began but did not finish (its segment was split there)
        goes to the recorder, to be joined with the rest."""
        if self._hasher is not None and self._left:
            self._recorder.head_written(self._index, self._next, self._hasher)
        elif self._tail:
            self._recorder.part_written(self._index, self._tail_at, self._tail, self._kept)
            self._tail = None
        self._drop_tail()
        self._hasher = None

    def _drop_tail(self) -> None:
        if self._tail is not None:
            self._recorder.let_go(self._kept)
            self._tail = None


def _read_at(fd: int, buffer: memoryview, offset: int) -> int:
    """Fill `buffer` from `offset`; fewer bytes only at the end of the file."""
    got = 0
    while got < len(buffer):
        n = os.preadv(fd, [buffer[got:]], offset + got)
        if not n:
            break
        got += n
    return got


def check(
    fd: int,
    hashes: PieceHashes,
    size: int,
    whole: Iterable[Hasher] = (),
    *,
    stop: Callable[[], bool] | None = None,
) -> list[int]:
    """The pieces of the file open at `fd` whose bytes do not match `hashes`, in one read pass
    that also feeds the `whole`-file hashers."""
    whole = list(whole)
    buffer = memoryview(bytearray(hashes.piece_size))
    damaged = []
    for index in range(hashes.count):
        if stop is not None and stop():
            from ..core.errors import Cancelled

            raise Cancelled("verification stopped")
        start, end = hashes.span(index, size)
        n = _read_at(fd, buffer[: end - start], start)
        view = buffer[:n]
        for hasher in whole:
            hasher.update(view)
        if n != end - start or digest(view) != hashes.digest(index):
            damaged.append(index)
    return damaged


def ranges_of(indices: Iterable[int], hashes: PieceHashes, size: int) -> list[tuple[int, int]]:
    """The byte ranges [start, end) the pieces cover, neighbours joined."""
    ranges: list[tuple[int, int]] = []
    for index in sorted(indices):
        start, end = hashes.span(index, size)
        if ranges and ranges[-1][1] == start:
            ranges[-1] = (ranges[-1][0], end)
        else:
            ranges.append((start, end))
    return ranges


def describe(indices: list[int], hashes: PieceHashes, size: int) -> str:
    """'1 of 6 pieces damaged: bytes 12582912-16777215', the ranges as HTTP writes them."""
    ranges = ranges_of(indices, hashes, size)
    shown = ", ".join(f"{start}-{end - 1}" for start, end in ranges[:5])
    more = f" and {len(ranges) - 5} more ranges" if len(ranges) > 5 else ""
    return f"{len(indices)} of {hashes.count} pieces damaged: bytes {shown}{more}"
