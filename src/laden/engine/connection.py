"""One connection of a transfer: take a segment, move its bytes from the reader to the sink,
repeat. The same loop for either direction: it knows the two ends only as the seam's
`PieceReader` (a download's source) and `PieceSink` (a download's partial file).

This is the loop that decides laden's speed, so it does as little as possible per read: one
`readinto` into a buffer it reuses for its whole life (the read fills it in C with the GIL
released; with a checksum to compute, into the bytes' place in the hash's ring instead), one
positional write at the segment's offset (`os.pwrite` into a partial file), and two short lock
holds to keep the segment plan exact. When the sink takes direct writes, reads fill the buffer
before it is written, so each write to the disk is large. Read sizes adapt: small while a
connection is slow, so pause, progress and stall detection stay prompt, growing to the full
buffer when bytes arrive fast.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..core.errors import Permanent, RangeNotSupported, RemoteChanged, Retryable, SlowDown
from .direct import aligned_buffer, slot
from .segments import Segment

if TYPE_CHECKING:
    from .download import Connection
    from .seam import Ends, Run

FIRST_READ = 16 * 1024
SMALLEST_READ = 4 * 1024
"""Reads start small and shrink on a slow connection: a read shows its bytes only once its
buffer is full, and the connection's speed is judged by them (see `health`)."""
FAST_READ_SECONDS = 0.05
SLOW_READ_SECONDS = 0.5
FILL_SECONDS = 0.1
"""How long a read may gather bytes for one direct write: progress and pause stay prompt."""


def run_connection(run: Run, ends: Ends, number: int) -> None:
    """Work until nothing is left to take, the transfer stops, or this connection gives up."""
    hosts = run.hosts
    plan = ends.plan
    assert plan is not None
    download = run.download
    stop = run.stop_event
    host = ends.host
    live = run.connection(number)
    if not hosts.acquire(host, stop, lambda: not plan.finished):
        run.drop_connection(number)
        return
    view = aligned_buffer(run.config.buffer_size)
    read_size = FIRST_READ
    attempt = 0
    segment: Segment | None = None
    try:
        while not stop.is_set():
            if segment is None or segment.finished or segment.connection != number:
                segment = plan.take(number)
                if segment is None:
                    return
            live.start, live.end, live.position = segment.start, segment.end, segment.position
            try:
                read_size = _stream_segment(run, ends, segment, view, read_size, live)
                attempt = 0
            except Replaced:
                # Closed for being too slow: its range goes back, and this worker asks again on
                # a fresh connection (it may take the same range, or another one may).
                plan.release(segment)
                segment = None
                live.replaced = None
            except SlowDown as exc:
                plan.release(segment)
                segment = None
                new_limit = hosts.lower(host)
                download.add_error(f"{exc} (now at most {new_limit} connections to {host})")
                if run.other_connections(number) > 0:
                    return  # the others carry on; this connection's slot goes back
                attempt += 1
                live.retries += 1
                if not run.backoff(attempt, exc):
                    return
            except Permanent as exc:
                if exc.status == 403 and run.other_connections(number) > 0:
                    # Many servers answer 403 past a per-client connection limit: treat it as
                    # "slow down" while other connections to the same file still work.
                    plan.release(segment)
                    segment = None
                    hosts.lower(host)
                    download.add_error(f"{exc}; continuing with fewer connections")
                    return
                run.fail(exc)
                return
            except (RemoteChanged, RangeNotSupported) as exc:
                run.fail(exc)
                return
            except Retryable as exc:
                if getattr(exc, "reresolve", False):
                    try:
                        ends.reader.renew()
                    except Exception as again:  # noqa: BLE001 - reported through the transfer
                        run.fail(again)
                        return
                attempt += 1
                live.retries += 1
                live.last_status = str(exc)
                download.add_error(str(exc))
                if not run.backoff(attempt, exc):
                    if run.other_connections(number) > 0:
                        plan.release(segment)
                        return
                    run.fail(exc)
                    return
            except Exception as exc:  # noqa: BLE001 - DiskError and bugs end the transfer cleanly
                run.fail(exc)
                return
    finally:
        hosts.release(host)
        if segment is not None and not segment.finished and segment.connection == number:
            plan.release(segment)
        run.drop_connection(number)


def _stream_segment(
    run: Run, ends: Ends, segment: Segment, view: memoryview, read_size: int,
    live: Connection,
) -> int:
    """Read `segment` to its (possibly shrinking) end; returns the read size to use next."""
    plan = ends.plan
    assert plan is not None
    stop = run.stop_event
    part = ends.sink
    limits = run.limits
    full = len(view)
    reader = ends.reader.open_range(segment.position, segment.end)
    live.abort = getattr(reader, "abort", None)
    live.since = time.monotonic()
    first = segment.position
    # What the connection shows while it works: a reader may word it (an upload's "sending").
    live.last_status = getattr(reader, "status", "206 reading")
    # Readers that can move bytes into the sink inside the kernel say so per response; a direct
    # write moves them with one copy too, without filling the page cache.
    splice = getattr(reader, "splice_into", None) if getattr(reader, "can_splice", False) else None
    if part.direct:
        splice = None
    # With a checksum to check, bytes the hash will reach soon are read into the hasher's ring.
    hasher = ends.hasher
    # A sink that keeps what it is sent in memory (an upload's parts) may offer the place to
    # read into, so no byte is copied from the connection's buffer into it.
    sink_place = getattr(part, "place_for", None) if hasher is None else None
    # Piece hashes are taken from the bytes as written, while they are still in memory.
    pieces = ends.pieces.stream() if ends.pieces is not None else None
    try:
        while not stop.is_set():
            want = plan.reserve(segment, limits.read_size(read_size))
            if want == 0:
                return read_size
            began = time.monotonic()
            if splice is not None and reader.can_splice:  # type: ignore[attr-defined]
                n = splice(part, segment.position, want)
            else:
                place = (hasher.place_for(segment.position, want) if hasher else
                         sink_place(segment.position, want) if sink_place else None)
                region = slot(view, segment.position, want) if place is None else place
                n = _fill(reader, region, began) if part.direct else reader.readinto(region)
                if n:
                    part.write(region[:n], segment.position, placed=True)
                    if place is not None and hasher is not None:
                        hasher.keep(segment.position, n)  # type: ignore[union-attr]
                    if pieces is not None:
                        pieces.feed(segment.position, region[:n])
            if n == 0:
                raise Retryable("the server closed the connection before the range ended")
            plan.advance(segment, n)
            live.position = segment.position
            live.end = segment.end
            live.bytes += n
            read_size = adapted(read_size, time.monotonic() - began, full)
            limits.consume(n, stop)
        return read_size
    except Exception:
        plan.interrupted(segment)  # an upload's part is sent again whole
        if live.replaced:
            raise Replaced(live.replaced) from None
        raise
    finally:
        if not live.replaced:
            run.health.answer_read(segment.position - first, time.monotonic() - live.since)
        live.since, live.abort = 0.0, None
        reader.close()
        if pieces is not None:
            pieces.close()


class Replaced(Exception):
    """The transfer closed this connection for being too slow; another one continues."""


def adapted(read_size: int, took: float, full: int) -> int:
    """The next read's size: doubled after a fast read, up to the buffer, halved after a slow
    one, so a slow server's bytes still show as progress and count for its speed."""
    if took < FAST_READ_SECONDS and read_size < full:
        return min(full, read_size * 2)
    if took > SLOW_READ_SECONDS and read_size > SMALLEST_READ:
        return read_size // 2
    return read_size


def _fill(reader: object, region: memoryview, began: float) -> int:
    """Read until `region` is full, the body ends, or FILL_SECONDS have passed."""
    got: int = reader.readinto(region)  # type: ignore[attr-defined]
    while got and got < len(region) and time.monotonic() - began < FILL_SECONDS:
        n = reader.readinto(region[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def run_single_stream(run: Run, ends: Ends) -> None:
    """The whole file on one connection, for servers without ranges or a known size.

    Such a transfer cannot resume: any failure starts it again from byte zero, so bytes from
    two responses are never joined.
    """
    stop = run.stop_event
    live = run.connection(0)
    full = run.config.buffer_size
    view = aligned_buffer(full)
    attempt = 0
    while not stop.is_set():
        position = 0
        read_size = FIRST_READ
        pieces = ends.pieces.stream() if ends.pieces is not None else None
        try:
            reader = ends.reader.open_range(0, None)
            live.abort = getattr(reader, "abort", None)
            live.since = time.monotonic()
            sink = ends.sink
            try:
                live.last_status = "200 reading"
                while not stop.is_set():
                    began = time.monotonic()
                    region = slot(view, position, run.limits.read_size(read_size))
                    n = reader.readinto(region)
                    if n == 0:
                        break
                    sink.write(region[:n], position, placed=True)
                    if pieces is not None:
                        pieces.feed(position, region[:n])
                    position += n
                    live.position = live.bytes = position
                    run.streamed = position
                    read_size = adapted(read_size, time.monotonic() - began, full)
                    run.limits.consume(n, stop)
            finally:
                live.since, live.abort = 0.0, None
                reader.close()
            if stop.is_set():
                return
            size = ends.reader.size
            if size is not None and position != size:
                raise Retryable(f"the server sent {position} of {size} bytes")
            run.finish_stream(position)
            return
        except Retryable as error:
            exc = Retryable(live.replaced) if live.replaced else error
            live.replaced = None
            attempt += 1
            live.retries += 1
            run.download.add_error(f"{exc}; starting again from the first byte")
            run.streamed = 0
            if not run.backoff(attempt, exc):
                run.fail(exc)
                return
        except Exception as exc:  # noqa: BLE001 - reported through the transfer
            run.fail(exc)
            return
