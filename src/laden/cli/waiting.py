"""`laden get` when another laden is fetching the same thing: wait for it (see
`engine.sharing`), and say what it got as if this process had fetched it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..core.errors import StateDirBusy
from ..core.units import format_size
from ..engine import sharing


def wait_for_owner(requests: list[sharing.Request], busy: StateDirBusy,
                   args: argparse.Namespace) -> int | None:
    """The owner's exit code once it is done, having printed what it got; None when it
    stopped without an outcome and this process should take over."""
    def tell() -> None:
        if not (args.quiet or args.json):
            holder = str(busy).partition("(")[2].partition(")")[0] or "another laden"
            print(f"laden: {holder} is already fetching this into the same place; waiting for "
                  "it (--no-wait to stop instead)", file=sys.stderr)

    outcome = sharing.wait_for_owner(sharing.state_folder(), requests, busy, on_wait=tell)
    if outcome is None:
        return None
    show(outcome, args)
    return int(outcome.get("exit", 1))


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
