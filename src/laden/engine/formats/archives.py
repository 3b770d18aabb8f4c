"""Zip archives as model files: the central directory, and each member's local header and data
inside the file. PyTorch checkpoints and NumPy `.npz` files are both zips (see `pytorch`,
`numpy`); a truncated zip has lost its central directory, which sits at the end.

`zipfile` reads only the end of the file to list the members; reading a member is left to the
callers, for the few small ones they look into.
"""

from __future__ import annotations

import struct
import zipfile
from typing import BinaryIO

from .reading import Broken, FileView, quoted

ZIP_MAGIC = b"PK\x03\x04"
LOCAL_HEADER = struct.Struct("<4s22xHH")
"""The local file header: signature, 22 bytes we do not need, name length, extra length."""


def open_zip(view: FileView, handle: BinaryIO, kind: str) -> zipfile.ZipFile:
    """The archive, its members' local headers and data checked to lie inside the file."""
    try:
        archive = zipfile.ZipFile(handle)
    except Exception as exc:  # zipfile raises whatever damaged input makes it meet
        raise Broken(f"its zip central directory cannot be read ({_said(exc)}): the file is "
                     "cut short or damaged", kind=kind) from None
    # The members' data ends where the central directory starts (zipfile found it).
    limit = getattr(archive, "start_dir", view.size)
    for info in archive.infolist():
        what = f"member {quoted(info.filename)}"
        header = view.read(info.header_offset, LOCAL_HEADER.size, f"the local header of {what}")
        signature, name_length, extra_length = LOCAL_HEADER.unpack(header)
        if signature != ZIP_MAGIC:
            raise Broken(f"{what} has no local header at byte {info.header_offset:,}: the "
                         "archive is damaged", kind=kind)
        end = (info.header_offset + LOCAL_HEADER.size + name_length + extra_length
               + info.compress_size)
        if end > limit:
            raise Broken(f"{what} ends at byte {end:,} but the zip's central directory starts "
                         f"at byte {limit:,}", kind=kind)
    return archive


def read_member(archive: zipfile.ZipFile, name: str, size: int, kind: str) -> bytes:
    """The first `size` bytes of a member, decompressed; the CRC is checked when that is all."""
    try:
        with archive.open(name) as member:
            return member.read(size)
    except Exception as exc:  # a damaged member: any decompressor's error, an "encrypted"
        # flag, an unknown method
        raise Broken(f"member {quoted(name)} cannot be read: {_said(exc)}", kind=kind) from None


def _said(exc: Exception) -> str:
    """An error from zipfile or a decompressor as a short clause."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:120] + "…"
