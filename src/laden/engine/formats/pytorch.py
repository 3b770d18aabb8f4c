"""PyTorch checkpoints (`.pt`, `.pth`, `.bin`), checked without torch and without unpickling.

`torch.save` writes a zip whose central directory lists `<archive>/data.pkl` (the pickled
structure) beside one member per tensor storage; before PyTorch 1.6 it wrote a run of pickles
that starts with a magic number. A zip checkpoint is checked as a zip (`archives`), and its
`data.pkl` read as bytes: a pickle's protocol mark at the start, its STOP at the end and the
member's CRC. A legacy checkpoint is recognised by its magic number; its pickles are never
loaded, so nothing after that is checked.

A `.bin` is often something else (a firmware image, a raw dump): one that is neither kind is
not a PyTorch checkpoint and is not checked. A `.pt` or `.pth` that is neither is refused.
"""

from __future__ import annotations

from typing import BinaryIO

from .archives import ZIP_MAGIC, open_zip, read_member
from .reading import Broken, FileView, quoted

ZIP_KIND = "PyTorch checkpoint (zip)"
LEGACY_KIND = "PyTorch checkpoint (legacy pickle)"
LEGACY_MAGIC = bytes.fromhex("8a0a6cfc9c46f9206aa85019")
"""The magic number 0x1950a86a20f9469cfc6c as pickle's LONG1 opcode writes it: the first
pickle of a legacy checkpoint, right after its protocol mark."""
MAX_PICKLE_READ = 64 << 20
"""`data.pkl` holds the structure, not the tensors: read whole (and its CRC checked) up to
this size, only its first bytes beyond it."""


def may_be_checkpoint(head: bytes) -> bool:
    """Whether a file that starts with `head` (its first 32 bytes or more) is a zip or a
    legacy checkpoint; a `.bin` that is neither is not checked."""
    return head.startswith(ZIP_MAGIC) or _legacy(head)


def _legacy(head: bytes) -> bool:
    return head[:1] == b"\x80" and LEGACY_MAGIC in head[2:20]


def check(view: FileView, handle: BinaryIO, *, required: bool) -> tuple[str, str] | None:
    """(kind, what the file holds); None for a file that is no PyTorch checkpoint when one is
    not `required` (a `.bin`); `Broken` when it is not a whole checkpoint."""
    head = view.head(32)
    if head.startswith(ZIP_MAGIC):
        return _zipped(view, handle, required=required)
    if _legacy(head):
        return LEGACY_KIND, ("the magic number is there; the pickles after it are not read "
                             "(laden never unpickles)")
    if not required:
        return None
    start = head[:8].hex(" ") or "nothing"
    if head[:1] == b"\x80":
        raise Broken(f"a pickle without PyTorch's magic number: not a PyTorch checkpoint "
                     f"(it starts with {start})", kind="PyTorch checkpoint")
    raise Broken(f"neither a zip archive nor a legacy pickle: not a PyTorch checkpoint (it "
                 f"starts with {start})", kind="PyTorch checkpoint")


def _zipped(view: FileView, handle: BinaryIO, *, required: bool) -> tuple[str, str] | None:
    archive = open_zip(view, handle, ZIP_KIND)
    infos = archive.infolist()
    pickles = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
    if not pickles:
        if not required:
            return None  # a zip, but not torch's
        raise Broken("a zip archive whose central directory lists no data.pkl: not a PyTorch "
                     "checkpoint", kind=ZIP_KIND)
    structure = min(pickles, key=lambda i: i.filename.count("/"))
    name = quoted(structure.filename)
    data = read_member(archive, structure.filename, MAX_PICKLE_READ, ZIP_KIND)
    if len(data) < 2 or data[0] != 0x80 or not 2 <= data[1] <= 5:
        raise Broken(f"{name} does not start with a pickle's protocol mark", kind=ZIP_KIND)
    if structure.file_size <= MAX_PICKLE_READ and not data.endswith(b"."):
        raise Broken(f"{name} does not end with a pickle's STOP: it is cut short",
                     kind=ZIP_KIND)
    storages = sum(1 for i in infos if "/data/" in i.filename)
    return ZIP_KIND, (f"{len(infos):,} records, {storages:,} tensor storages; "
                      f"{structure.filename} not unpickled")
