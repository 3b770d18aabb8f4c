"""`laden list --unfinished-uploads` and `laden remove --unfinished-uploads`: the uploads laden
began in parts at a service and never committed, whose parts the service keeps (and bills)
until they are completed or aborted."""

from __future__ import annotations

import argparse
import datetime
import json
import os
from typing import Any

from ..core.errors import LadenError
from ..core.printable import printable
from ..core.units import format_size

REMOVE_HINT = "laden remove --unfinished-uploads aborts them at the service and forgets them"


def print_unfinished(records: list[Any], states: dict[int, str],
                     args: argparse.Namespace) -> int:
    """`laden list --unfinished-uploads`: one line (or JSON object) per unfinished upload;
    `states` are the records' states as `laden list` tells them (see `shown_state`)."""
    from ..engine.uploading.unfinished import unfinished_uploads

    found = unfinished_uploads(records)
    others = _at_service(records, args) if args.at else []
    if args.json:
        for waiting in others:
            print(json.dumps({"id": None, "url": waiting.url, "started": waiting.started,
                              "known": False}))
        for upload in found:
            print(json.dumps({"id": upload.id, "url": upload.url, "local": upload.local,
                              "state": states.get(upload.id, upload.state),
                              "parts": upload.parts,
                              "sent": upload.sent, "started": upload.started}))
        return 0
    _print_others(others, args.at)
    if not found:
        print("no unfinished uploads: nothing laden began is waiting at a service")
        return 0
    print(f"{'ID':>4}  {'STATE':<11} {'PARTS':>5}  {'SENT':>10}  {'STARTED':<16}  "
          "LOCAL -> REMOTE")
    for upload in found:
        started = datetime.datetime.fromtimestamp(upload.started).strftime("%Y-%m-%d %H:%M")
        state = states.get(upload.id, upload.state)
        print(printable(f"{upload.id:>4}  {state:<11} {upload.parts:>5}  "
                        f"{format_size(upload.sent):>10}  {started:<16}  "
                        f"{os.path.basename(upload.local)} -> {upload.url}"))
    print(f"their parts stay at the service until they are finished or aborted; {REMOVE_HINT}")
    return 0


def _at_service(records: list[Any], args: argparse.Namespace) -> list[Any]:
    """The service's unfinished uploads under `--at` that laden's journal does not know."""
    from ..engine.manager import DownloadManager
    from ..store import settings
    from .commands import download_options

    # Without the journal: `laden list` works while another laden holds it.
    manager = DownloadManager(settings.load(), persist=False)
    try:
        return manager.unfinished_at(args.at, download_options(args), besides=records)
    finally:
        manager.close()


def _print_others(others: list[Any], at: str | None) -> None:
    if at is None:
        return
    if not others:
        print(printable(f"at the service under {at}: no unfinished uploads but laden's"))
        return
    print(printable(f"at the service under {at}: {len(others)} unfinished uploads laden's "
                    "journal does not know (another tool's, or forgotten); laden does not "
                    "abort them: a lifecycle rule or the service's own tools can"))
    for waiting in others:
        started = ("?" if waiting.started is None else
                   datetime.datetime.fromtimestamp(waiting.started).strftime("%Y-%m-%d %H:%M"))
        print(printable(f"   -  started {started}  {waiting.url}"))


def remove_unfinished(manager: Any, ids: list[int]) -> int:
    """`laden remove --unfinished-uploads` (or those of `ids` that are uploads): abort each
    at its service and forget it; one that cannot be aborted is kept, and the exit code is 1."""
    found = {u.id: u for u in manager.unfinished_uploads()}
    chosen = ids or list(found)
    if not chosen:
        print("no unfinished uploads to remove")
        return 0
    failed = 0
    for download_id in chosen:
        upload = found.get(download_id)
        if upload is None:  # only what was asked: never a download, nor a finished upload
            print(f"[{download_id}] is not an unfinished upload: left as it is")
            continue
        what = f"{os.path.basename(upload.local)} to {upload.url}"
        try:
            aborted = manager.abort_upload(download_id)
        except LadenError as exc:
            failed += 1
            print(printable(f"[{download_id}] could not abort the upload of {what}: {exc}; "
                            "kept, to try again"))
            continue
        if aborted is None:  # it committed or lost its upload meanwhile
            print(printable(f"[{download_id}] removed {what} (nothing was waiting at the "
                            "service)"))
        else:
            print(printable(f"[{download_id}] aborted the unfinished upload of {what} at the "
                            f"service ({aborted.parts} parts, {format_size(aborted.sent)}) "
                            "and forgot it"))
    return 1 if failed else 0
