"""Model-file checks: is a file structurally what its name says?

A download that stopped early is caught by its size, and one that changed by its checksum; a
model file can still be broken in ways neither sees: the server's copy was cut short when it
was uploaded, a proxy answered with a login page, the hub served a Git LFS pointer. Before a
download of a `.safetensors`, `.gguf`, PyTorch (`.pt`, `.pth`, `.bin`), NumPy (`.npz`, `.npy`)
or `.onnx` file takes its final name, its structure is checked (see `format_check`), and
`laden verify` checks it again.

Each check reads the file's headers and indexes and works out from its size whether the rest
is there; it never reads the tensors, never imports torch, numpy or onnx, and never unpickles
anything. `check_file` is the whole API:

    from laden.engine.formats import check_file

    report = check_file("model.safetensors")
    if report is not None and not report.ok:
        print(report.message)   # model.safetensors: tensor 'w' ends at byte ... but ...
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO

from ...core.snapshots import FormatReport

if TYPE_CHECKING:
    from .reading import FileView

KINDS = {
    ".safetensors": "safetensors", ".gguf": "GGUF", ".pt": "PyTorch checkpoint",
    ".pth": "PyTorch checkpoint", ".bin": "PyTorch checkpoint", ".npz": "NumPy archive (.npz)",
    ".npy": "NumPy array (.npy)", ".onnx": "ONNX",
}
"""The suffixes checked, and what a file with each is checked as."""


def kind_of(name: str) -> str | None:
    """What a file of this name is checked as; None when its suffix is not a model file's."""
    return KINDS.get(os.path.splitext(name)[1].lower())


def check_file(path: str | os.PathLike[str], name: str | None = None, *,
               head: bytes | None = None) -> FormatReport | None:
    """Check the structure of the model file at `path`.

    Args:
        path: The file; it is only read.
        name: The name that decides the format (a partial file's final name); the path's
            own name when None.
        head: The file's first bytes, when the caller has them (a small file that came whole
            in one answer): a `.bin` that plainly is no checkpoint is then passed over without
            opening the file.

    Returns:
        The verdict, or None when the name is not a model file's, or the file is a `.bin`
        that is no PyTorch checkpoint.

    Raises:
        OSError: the file cannot be opened or read.
    """
    from ...core.printable import printable
    from .reading import Broken, FileView, looks_like

    name = name or os.path.basename(os.fspath(path))
    kind = kind_of(name)
    if kind is None:
        return None
    optional = name.lower().endswith(".bin")  # checked only when it is a checkpoint
    if optional and head is not None:
        from .pytorch import may_be_checkpoint

        if not may_be_checkpoint(head[:32]):
            return None
    with open(path, "rb") as handle:
        view = FileView(handle.fileno(), os.fstat(handle.fileno()).st_size)
        if view.size == 0:
            return None if optional else FormatReport(kind, False, "the file is empty")
        impostor = None if optional else looks_like(view.head(), kind)
        if impostor is not None:
            return FormatReport(kind, False, impostor)
        try:
            found = _check(kind, name, view, handle)
        except Broken as exc:
            return FormatReport(exc.kind or kind, False, printable(str(exc)))
    if found is None:
        return None
    return FormatReport(found[0], True, printable(found[1]))


def _check(kind: str, name: str, view: FileView, handle: BinaryIO) -> tuple[str, str] | None:
    from . import gguf, numpy, onnx, pytorch, safetensors

    if kind == safetensors.KIND:
        return safetensors.check(view)
    if kind == gguf.KIND:
        return gguf.check(view)
    if kind == onnx.KIND:
        return onnx.check(view)
    if kind == numpy.NPZ_KIND:
        return numpy.check_npz(view, handle)
    if kind == numpy.NPY_KIND:
        return numpy.check_npy(view)
    return pytorch.check(view, handle, required=not name.lower().endswith(".bin"))
