"""Putting uploads in the queue: one file, several files, or a folder keeping its layout.

Where each file goes: one file to an address not ending in "/" goes to that key; one file to a
prefix (ending in "/", or a bucket alone), and each of several files, goes under the prefix by
its name; a folder's files go under the prefix by their path inside the folder (as `aws s3 cp
--recursive` and `rclone copy` lay them out), those matching `glob` only. Everything is
checked before anything is queued: a missing file, a service laden cannot upload to, a
conflict policy it does not know.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...core.errors import InputError
from ...core.states import State
from ...core.upload_policies import CONFLICTS
from ...sources import cloud
from ...sources.listing import compile_glob
from ...store.records import Record
from .. import events
from ..adding import build_options, take_credentials
from .changes import checked, on_change_of
from .local import files_under, pin
from .parts import part_size
from .state import fresh

if TYPE_CHECKING:
    from ...core.options import DownloadOptions
    from ..context import Engine

def targets(paths: list[str], url: str, glob: str | None = None) -> list[tuple[str, str]]:
    """(local file, remote address) for each file to send.

    Raises:
        InputError: a path is missing, or a folder holds nothing that matches.
    """
    if not paths:
        raise InputError("nothing to upload")
    _without_query(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    bucket, key = cloud.split_address(url) if scheme else ("", "")
    if not bucket:
        raise InputError(f"{url} does not name a bucket to upload to")
    pattern = compile_glob(glob) if glob else None
    many = len(paths) > 1 or any(os.path.isdir(p) for p in paths)
    to_key = not (key.endswith("/") or not key or many)
    # Names are added to the address as written: what it holds percent-encoded stays so (a
    # hub revision with "/" in it, `@feature%2Fx`), where decoding and encoding it again
    # would not give it back. What is not allowed in an address as it stands (a space) is
    # percent-encoded, as in the names added to it.
    url = quote(url, safe=cloud.KEY_SAFE + "%")
    under = url if url.endswith("/") else url + "/"
    found: list[tuple[str, str]] = []
    for path in paths:
        path = os.path.abspath(os.path.expanduser(path))
        if os.path.isdir(path):
            for relative in files_under(path):
                if pattern is None or pattern.fullmatch(relative):
                    found.append((os.path.join(path, relative),
                                  under + quote(relative, safe=cloud.KEY_SAFE)))
        elif os.path.isfile(path):
            if pattern is not None and len(paths) > 1 and not pattern.fullmatch(
                    os.path.basename(path)):
                continue
            name = os.path.basename(path)
            found.append((path, url if to_key else under + quote(name, safe=cloud.KEY_SAFE)))
        else:
            raise InputError(f"{path} is not there to upload")
    if not found:
        raise InputError("no file to upload" + (f" matches {glob!r}" if glob else ""))
    return found


def _without_query(url: str) -> None:
    """Refuse an address with a query: for an upload it would be a SAS or a signature, which
    the journal would keep with the address (and a folder's files would go after it)."""
    bare, query = url.split("?", 1) if "?" in url else (url, "")
    if query:
        raise InputError(f"{bare}?... : an upload address takes no query; give a SAS as a "
                         "credential instead (the azure_sas_token_file option, or the "
                         "service's other credential options)")


def add_upload(
    manager: Engine, path: str, url: str, *, options: DownloadOptions | None, group: str | None,
    start: bool, conflict: str, option_fields: dict[str, Any], on_change: str = "stop",
) -> int:
    """Queue one upload of the file `path` to `url`; the same again continues the unfinished
    one (with this call's policies). Returns its id."""
    from ...sources.registry import scheme_of

    _without_query(url)
    if conflict not in CONFLICTS:
        raise InputError(f"an upload's conflict policy is one of {', '.join(CONFLICTS)}, not "
                         f"{conflict!r}")
    policy = on_change_of({"on_change": checked(on_change)})
    scheme_of(url)
    url, options = take_credentials(url, build_options(options, option_fields))
    uploader = manager.sources.uploader_for(url)  # refuses a service laden cannot upload to
    path = os.path.abspath(os.path.expanduser(path))
    pinned = pin(path)
    folder, filename = os.path.split(path)
    queue = manager.queue
    with queue.lock:
        existing = queue.unfinished(url, folder, filename, "upload")
        if existing is not None:
            with existing.lock:
                existing.options = existing.options.merged(options)
                assert existing.record.upload is not None
                existing.record.upload["conflict"] = conflict
                existing.record.upload.pop("on_change", None)
                existing.record.upload.update(policy)
            if start:
                manager.resume(existing.id)
            return existing.id
        record = Record(
            url=url, source=manager.sources.for_url(url).name, dest_dir=folder,
            filename=filename, dest=path, size=pinned.size, supports_ranges=True,
            state=State.QUEUED.value if start else State.PAUSED.value,
            options=options.to_journal(), group=group, position=queue.next_position(),
            direction="upload",
            upload={**fresh(pinned, part_size(pinned.size, uploader.min_part,
                                              uploader.max_parts), conflict), **policy},
        )
        download = queue.add(record, options)
    manager.emit(events.Added(download.id, download.info()))
    queue.notify()
    return download.id
