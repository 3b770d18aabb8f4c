"""Reading one HTTP response body into the partial file, copying as little as possible.

Two ways, chosen per response:

* `readinto` fills the connection's reused buffer straight from the socket (http.client's
  `readinto`, in C, GIL released); the engine then `pwrite`s it. Works for everything,
  TLS and chunked bodies included.
* `splice_into` moves the bytes socket -> pipe -> file inside the kernel with `os.splice`, for
  plain-HTTP bodies of known length: one copy per byte instead of two, and none through Python.
  On this kind of machine it cut CPU per GiB by about a tenth to a third.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import http.client
import os
import select
import socket
from collections.abc import Iterator
from typing import Any, Protocol

from ..core.errors import Retryable

SPLICE_MIN = 4 << 20
"""Smaller ranges keep the reusable-connection path: a connect would cost more than a copy."""
PIPE_SIZE = 1 << 20
JUDGE_CALLS = 16
SLOW_SPLICE = 128 << 10
"""Below this many bytes per splice on average, a response goes back to `readinto`."""
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_CAN_SPLICE = hasattr(os, "splice")


class PipeSink(Protocol):
    def write(self, data: memoryview, offset: int) -> None: ...
    def splice_in(self, pipe: int, count: int, offset: int) -> None: ...


class HttpRangeReader:
    """Reads one response body; `splice_into` is offered when the body can bypass Python."""

    def __init__(self, response: Any, *, stall_timeout: float = 30.0) -> None:
        self._response = response
        # urllib3 keeps the http.client response as `_fp`; its readinto is the copy-free path.
        self._raw: http.client.HTTPResponse = response._fp
        self._stall_timeout = stall_timeout
        self._left = self._raw.length  # body bytes not yet read, when the length is known
        self._pipe: tuple[int, int] | None = None
        self._calls = self._moved = 0
        self._buffered: int | None = None
        """Body bytes http.client's buffer still holds (None: not yet looked)."""
        sock = socket_of(response)
        self.can_splice = bool(
            _CAN_SPLICE
            # Only a plain TCP socket: TLS (and TLS inside a proxy tunnel) is decrypted in
            # user space, so its bytes cannot skip Python.
            and type(sock) is socket.socket
            and not self._raw.chunked
            and self._left is not None
            and self._left >= SPLICE_MIN
        )
        self._fd = sock.fileno() if self.can_splice and sock is not None else -1

    def readinto(self, buffer: memoryview) -> int:
        with _retryable():
            return self._raw.readinto(buffer)

    def splice_into(self, sink: PipeSink, offset: int, count: int) -> int:
        """Move up to `count` body bytes into `sink` at `offset`; 0 when the body has ended."""
        assert self._left is not None
        count = min(count, self._left)
        if count <= 0:
            return 0
        if self._buffered is None or self._buffered:
            # http.client read the headers through a buffer that may already hold the first
            # body bytes; they must all go first, and through Python, however small the reads
            # (a rate limit asks for 4 KiB).
            head = self._from_buffer(count)
            if head:
                sink.write(memoryview(head), offset)
                self._left -= len(head)
                return len(head)
        read_end, write_end = self._pipe or self._open_pipe()
        moved = self._from_socket(write_end, min(count, PIPE_SIZE))
        if moved:
            sink.splice_in(read_end, moved, offset)
            self._left -= moved
            self._judge(moved)
        return moved

    def _from_buffer(self, count: int) -> bytes:
        """Up to `count` of the body bytes http.client's buffer holds; b"" once none is left.
        peek hands over the whole buffer without reading the socket when it holds bytes (when
        it is empty it reads once, and those bytes are taken the same way)."""
        fp = self._raw.fp
        with _retryable():
            if self._buffered is None:
                self._buffered = min(len(fp.peek()), self._left or 0) if fp is not None else 0
            if not self._buffered or fp is None:
                return b""
            head = fp.read1(min(count, self._buffered))
        self._buffered -= len(head)
        return head

    def _judge(self, moved: int) -> None:
        """A slow connection hands over a few KiB per splice, each costing a trip through
        Python; `readinto` instead waits in C for a full buffer. Switch when splicing is slow."""
        self._calls += 1
        self._moved += moved
        if self._calls == JUDGE_CALLS:
            if self._moved < JUDGE_CALLS * SLOW_SPLICE:
                self.can_splice = False
                assert self._left is not None
                self._raw.length = self._left  # http.client reads the rest, knowing how much
            self._calls = self._moved = 0

    def _from_socket(self, pipe: int, count: int) -> int:
        while True:
            try:
                flags = os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK
                return os.splice(self._fd, pipe, count, flags=flags)
            except BlockingIOError:
                # The socket is non-blocking (it has a timeout); wait as recv would.
                poller = select.poll()
                poller.register(self._fd, select.POLLIN)
                if not poller.poll(self._stall_timeout * 1000):
                    raise Retryable(
                        "the connection stalled (no data before the stall timeout)"
                    ) from None
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise Retryable(f"connection lost: {short_reason(exc)}") from None

    def _open_pipe(self) -> tuple[int, int]:
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # a smaller pipe only means more system calls
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, PIPE_SIZE)
        self._pipe = (read_end, write_end)
        return self._pipe

    def abort(self) -> None:
        """Shut the connection down from another thread: a read waiting on it returns at once
        (the transfer replaces a connection that is too slow this way)."""
        sock = socket_of(self._response)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        if self._buffered == 0 and self._left == 0:
            # The whole body went around http.client: tell it so (`length` is what its own
            # reads count down), and the connection can carry the next request.
            self._raw.length = 0
            self._raw.close()
        elif not self._raw.isclosed():
            # Unread bytes remain (the range was split, or we are stopping): this connection
            # cannot carry another request.
            self._response.close()
        self._response.release_conn()


@contextlib.contextmanager
def _retryable() -> Iterator[None]:
    """A read of the answer that times out or loses its connection is a Retryable."""
    try:
        yield
    except TimeoutError:
        raise Retryable("the connection stalled (no data before the stall timeout)") from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise Retryable(f"connection lost: {short_reason(exc)}") from None


def socket_of(response: Any) -> socket.socket | None:
    connection = getattr(response, "connection", None) or getattr(response, "_connection", None)
    return getattr(connection, "sock", None)


def short_reason(exc: BaseException) -> str:
    """An exception's message, cut to its last part when it is too long for one line."""
    text = str(exc) or type(exc).__name__
    return text.split(": ")[-1] if len(text) > 160 else text
