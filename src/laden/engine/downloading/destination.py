"""Where a download's file goes: its name, and what happens when that name is taken.

Conflict policies (the `conflict` setting): `rename` picks `name.1.ext`, `overwrite` replaces
the file at the final rename, `skip` leaves it and finishes at once, `resume` treats the file
already there as the first bytes of the download (like `wget -c`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Container
from typing import TYPE_CHECKING

from ...core.errors import DestinationExists
from ...core.names import DEFAULT_NAME, free_name, sanitize_filename
from ...core.options import DownloadOptions
from ..partfile import PART_SUFFIX
from ..seam import Skip
from ..segments import merge_ranges
from ..verify import checksums_to_check

if TYPE_CHECKING:
    from ...core.config import Config
    from ...sources.base import RemoteInfo
    from ...store.journal import Record
    from ..download import Download


def conflict_policy(download: Download, config: Config) -> str:
    """What to do when the destination exists: the download's option, else the setting."""
    return download.options.conflict or config.conflict


def choose_destination(
    record: Record, options: DownloadOptions, remote: RemoteInfo, policy: str, taken: Container[str]
) -> None:
    """Settle `record.dest` and `record.filename`. Raises Skip or DestinationExists."""
    name = (
        sanitize_filename(options.filename)
        or record.filename
        or sanitize_filename(remote.filename)
        or ("index.html" if "html" in str(remote.extra.get("content_type")) else DEFAULT_NAME)
    )
    if name.endswith(PART_SUFFIX):
        # A name of laden's own partial files would be taken for another download's.
        name += "_"
    dest = os.path.join(record.dest_dir, name)
    if policy == "rename":
        dest = free_name(dest, taken)
    elif dest in taken:
        # The policy says what happens to a file already there, never that two downloads
        # share one partial file.
        raise DestinationExists(
            f"another download is already saving to {dest}; wait for it to finish, or give "
            "this one another name (--name)")
    elif os.path.lexists(dest):
        kind = _not_a_regular_file(dest)
        if policy == "skip":
            record.dest = dest
            record.extra["skipped"] = True
            raise Skip(f"skipped: {dest} already exists")
        if kind:
            raise DestinationExists(f"{dest} is {kind}, not a regular file; laden replaces "
                                    "or continues only regular files")
        if policy == "resume":
            adopt_existing_file(record, dest, remote)
    record.filename = os.path.basename(dest)
    record.dest = dest


def adopt_existing_file(record: Record, dest: str, remote: RemoteInfo) -> None:
    """conflict = resume: the file already there becomes the first bytes of the partial file.

    laden did not write that file, so nothing says its bytes are the start of this one: it is
    continued only when a checksum (yours, or one the service publishes) will prove the whole
    file at the end. A mismatch then starts the download again from zero (see `restarts`).
    """
    have = os.path.getsize(dest)
    if remote.size is not None and have > remote.size:
        raise DestinationExists(
            f"{dest} is larger than the remote file ({have} > {remote.size} bytes); "
            "not resuming from it"
        )
    if not have or not remote.supports_ranges:
        return
    if not checksums_to_check(record.checksums):
        raise DestinationExists(
            f"{dest} already exists, and without a checksum nothing can prove that its "
            f"{have} bytes are the start of this download; give --checksum, or choose "
            "--conflict rename or overwrite")
    os.replace(dest, dest + PART_SUFFIX)
    record.done_ranges = [(0, have)]
    record.extra["adopted_file"] = True
    record.message = (f"continuing from the {have} bytes already in {dest}; the checksum "
                      "will prove the result")


def _not_a_regular_file(path: str) -> str | None:
    """What `path` is, in words, when it is not a regular file (never followed if a link)."""
    mode = os.lstat(path).st_mode
    if stat.S_ISREG(mode):
        return None
    kinds = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
             (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a device"),
             (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket")]
    return next((words for test, words in kinds if test(mode)), "not a regular file")


def renamed_whole(record: Record, body: bytes | None = None) -> bool:
    """The signs of a crash between the final rename and the journal's record of it: the partial
    file is gone, a regular file of exactly the right size holds the final name, and the journal
    says every byte was in the partial file. A file that came whole with the probe has no ranges
    journalled before its rename; for it, `body` (the probe's bytes, fetched again) is the proof:
    the final name must hold exactly them."""
    size = record.size
    if not record.dest or not size or os.path.lexists(record.dest + PART_SUFFIX):
        return False
    all_written = merge_ranges(record.done_ranges) == [(0, size)]
    if not all_written and body is None:
        return False
    try:
        found = os.stat(record.dest, follow_symlinks=False)
        if not stat.S_ISREG(found.st_mode) or found.st_size != size:
            return False
        if all_written:
            return True
        with open(record.dest, "rb") as existing:
            return existing.read(size + 1) == body
    except OSError:
        return False
