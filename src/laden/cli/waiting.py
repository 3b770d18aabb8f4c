"""`laden get` when another laden is fetching the same thing: wait for it (see
`engine.sharing`), and say what it got as if this process had fetched it."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from typing import Any

from ..core.errors import LadenError, StateDirBusy
from ..core.snapshots import DownloadInfo
from ..core.states import State
from ..core.units import format_size
from ..engine import sharing
from ..engine.download import Download
from . import progress
from .progress import Display

log = logging.getLogger("laden")


def wait_for_owner(requests: list[sharing.Request], busy: StateDirBusy,
                   args: argparse.Namespace) -> int | None:
    """The owner's exit code once it is done, having printed what it got; None when it
    stopped without an outcome and this process should take over."""
    def tell() -> None:
        if not (args.quiet or args.json):
            holder = str(busy).partition("(")[2].partition(")")[0] or "another laden"
            print(f"laden: {holder} is already fetching this into the same place; waiting for "
                  "it (--no-wait to stop instead)", file=sys.stderr)

    folder = sharing.state_folder()
    watching = OwnersProgress(folder, requests, progress.choose(args.quiet, args.json))
    try:
        outcome = sharing.wait_for_owner(folder, requests, busy, on_wait=tell,
                                         keep_waiting=watching.look)
    finally:
        watching.close()
    if outcome is None:
        return None
    show(outcome, args)
    return int(outcome.get("exit", 1))


class OwnersProgress:
    """The owner's downloads of these requests, shown as this process would show its own: read
    from the journal, where the owner records its progress at each checkpoint."""

    EVERY = 0.5
    """Seconds between two looks at the journal."""

    def __init__(self, folder: str, requests: list[sharing.Request], display: Display) -> None:
        self._folder = folder
        self._requests = requests
        self._display = display
        self._journal: Any = None
        self._first: dict[int, tuple[float, int]] = {}
        self._next = time.monotonic() + self.EVERY  # the owner has just begun: let it record

    def look(self) -> bool:
        """`keep_waiting` for the wait: show what the journal says, now and then."""
        now = time.monotonic()
        if self._display.shows_progress and now >= self._next:
            self._next = now + self.EVERY
            try:
                self._display.update(self._owners())
            except (LadenError, OSError) as exc:
                log.debug("the owner's progress cannot be read: %s", exc)
                self._display = Display()  # the wait goes on, silently
        return True

    def _owners(self) -> list[DownloadInfo]:
        if self._journal is None:
            from ..store.journal import Journal

            self._journal = Journal(self._folder)
        records = self._journal.load_unfinished()
        return [self._with_speed(Download.from_journal(r).info()) for r in records
                if any(sharing.asked_for(request, r.url, r.dest_dir)
                       for request in self._requests)]

    def _with_speed(self, info: DownloadInfo) -> DownloadInfo:
        """The journal keeps no speed: the average since this process first saw the download
        (the owner records progress about once a second, too seldom for a speed of its own)."""
        now = time.monotonic()
        first = self._first.setdefault(info.id, (now, info.done))
        if info.state is State.CONNECTING and info.done > first[1]:
            # The journal is told of the start only with the next full save: bytes arriving
            # say it has started.
            info = dataclasses.replace(info, state=State.DOWNLOADING)
        if now - first[0] < 1.0 or info.done < first[1] or not info.state.is_moving:
            return info
        speed = (info.done - first[1]) / (now - first[0])
        left = None if info.size is None or speed <= 0 else (info.size - info.done) / speed
        return dataclasses.replace(info, speed=speed, eta=left)

    def close(self) -> None:
        self._display.close()
        if self._journal is not None:
            self._journal.close()


def show(outcome: dict[str, Any], args: argparse.Namespace) -> None:
    """The owner's downloads as `laden get` reports its own (`commands.summarise`)."""
    for item in outcome.get("downloads", []):
        if args.json:
            print(json.dumps({"event": "shared", **item}, separators=(",", ":")))
            continue
        if item.get("state") != "done":
            reason = item.get("message") or item.get("state")
            print(f"laden: {item.get('dest')}: {reason}", file=sys.stderr)
        elif args.quiet:
            continue
        elif item.get("skipped"):
            print(f"skipped {item.get('dest')}: a file is already there (--conflict skip); "
                  "nothing was downloaded")
        else:
            message = item.get("message")
            print(f"saved {item.get('dest')} ({format_size(item.get('size'))})"
                  + (f": {message}" if message else ""))
