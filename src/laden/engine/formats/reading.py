"""Reading a file's structure without trusting it: every offset and length is checked against
the file's size before anything is read, so a damaged header can neither make a check read
past the end nor ask for gigabytes of memory.
"""

from __future__ import annotations

import os
import struct

from ...core.printable import printable

WINDOW = 1 << 20
"""Bytes read at a time: headers are parsed field by field, one system call per field was the
cost of a GGUF vocabulary (150,000 strings), one per megabyte is not."""


_FORMS: dict[str, struct.Struct] = {}
"""Compiled once: a GGUF vocabulary asks for hundreds of thousands of numbers."""


class Broken(Exception):
    """The file is not what its name says; `str(exc)` says what is wrong, in one line.

    Attributes:
        kind: what the file was checked as, when the checker knows better than its suffix
            (a `.pt` file is a zip checkpoint or a legacy pickle).
    """

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind


class FileView:
    """Random access to an open file of a known size, read through a one-window cache."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size
        self._start = 0
        self._window = b""

    def read(self, offset: int, length: int, what: str) -> bytes:
        """`length` bytes at `offset`; `Broken` naming `what` when they run past the end."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise Broken(f"{what} at byte {offset:,} needs {length:,} bytes, but the file "
                         f"ends at byte {self.size:,}")
        start = offset - self._start
        if start < 0 or start + length > len(self._window):
            if length > WINDOW:
                return self._whole(os.pread(self.fd, length, offset), length, what)
            self._start = offset
            self._window = os.pread(self.fd, min(WINDOW, self.size - offset), offset)
            start = 0
        return self._whole(self._window[start:start + length], length, what)

    def _whole(self, data: bytes, length: int, what: str) -> bytes:
        if len(data) != length:  # only when the file shrank while it was being checked
            raise Broken(f"{what}: the file became shorter while it was being read")
        return data

    def head(self, length: int = 64) -> bytes:
        return os.pread(self.fd, min(length, self.size), 0)


class Cursor:
    """Sequential little- (or big-) endian reading from a `FileView`."""

    def __init__(self, view: FileView, offset: int = 0, *, order: str = "<") -> None:
        self.view = view
        self.offset = offset
        self.order = order

    def take(self, length: int, what: str) -> bytes:
        data = self.view.read(self.offset, length, what)
        self.offset += length
        return data

    def skip(self, length: int, what: str) -> None:
        if self.offset + length > self.view.size:
            raise Broken(f"{what} at byte {self.offset:,} is {length:,} bytes long and would "
                         f"end at byte {self.offset + length:,}, but the file has "
                         f"{self.view.size:,} bytes")
        self.offset += length

    def number(self, code: str, what: str) -> int:
        """One unsigned integer: `code` is a struct code ("I" 32 bits, "Q" 64 bits)."""
        form = _FORMS.get(self.order + code) or _FORMS.setdefault(
            self.order + code, struct.Struct(self.order + code))
        (value,) = form.unpack(self.take(form.size, what))
        return int(value)

    @property
    def left(self) -> int:
        return self.view.size - self.offset


def quoted(name: str, limit: int = 80) -> str:
    """A name from inside a file, safe to show and short enough for one line."""
    shown = name if len(name) <= limit else name[:limit] + "…"
    return "'" + printable(shown) + "'"


def looks_like(head: bytes, kind: str) -> str | None:
    """What a file that is no model file at all is instead, from its first bytes: the usual
    way a model download goes wrong without an error is a server or proxy answering 200 with
    a login page, an XML error, or the Git LFS pointer instead of the file it points to."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"version https://git-lfs.github.com/spec/"):
        return f"it is a Git LFS pointer instead of the {kind} file it points to"
    if text.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return f"it is an HTML page, not a {kind} file"
    if text.startswith(b"<?xml"):
        return f"it is an XML document (a storage service's error answer?), not a {kind} file"
    return None


def counted(number: int, word: str, words: str | None = None) -> str:
    """"1 tensor", "12 tensors", "1,024 tensors" (`words`: a plural that is not word + s)."""
    return f"{number:,} {word if number == 1 else words or word + 's'}"
