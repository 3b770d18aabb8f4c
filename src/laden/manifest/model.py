"""A manifest once it is valid: items, and for each the files or folders it names.

Everything here is already checked and resolved: addresses are built, target paths are absolute
and inside `download_root` (or absolute as written), secrets are read from their files. Nothing
in these objects is written to the journal except through `DownloadOptions.to_journal()`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.options import DownloadOptions

POLICIES = ("overwrite", "skip", "resume")
DEFAULT_POLICY = "overwrite"
"""What Kaiwo does with a file that is already there: replace it. A rerun of the same manifest
does not download finished files again either way: the journal knows them."""


@dataclass(frozen=True)
class Target:
    """One file, or one folder (prefix) whose files are found by listing it."""

    url: str
    """The source address, without credentials: s3://bucket/key, ftp://host/dir/, ..."""
    dest: str
    """Absolute local path: the file, or the folder (ending in a separator) it goes into."""
    options: DownloadOptions
    folder: bool = False
    glob: str | None = None
    """For folders: which files, relative to the folder (pathlib rules, default every file)."""
    label: str = ""
    """How messages name it: bucket/key, repo/file, the address."""
    upload: Upload | None = None
    """For an upload item's file: `url` is where it goes, `dest` the local file it sends."""


@dataclass(frozen=True)
class Upload:
    """An upload's policies (see `DownloadManager.add_upload`)."""

    conflict: str = "overwrite"
    """When the remote name is taken: overwrite, skip (same size and CRC32C), fail."""
    on_change: str = "stop"
    """When the local file changes before the commit: stop, or restart from the first byte."""


@dataclass(frozen=True)
class Item:
    """One entry of `download_items` (or of `upload_items`)."""

    index: int
    """1-based position in its list, as messages count."""
    name: str
    type: str
    targets: tuple[Target, ...]
    direction: str = "download"

    @property
    def title(self) -> str:
        kind = "upload item" if self.direction == "upload" else "item"
        return self.name or f"{kind} {self.index} ({self.type})"


@dataclass(frozen=True)
class Manifest:
    path: str
    """Absolute path of the manifest file."""
    download_root: str
    items: tuple[Item, ...]
    """Download items first, then upload items."""

    @property
    def group(self) -> str:
        """The journal group of this manifest's downloads: rerunning the file finds them."""
        return f"manifest:{self.path}"
