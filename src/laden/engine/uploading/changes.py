"""What an upload does when its local file changes before the commit: its `on_change` policy.

The parts sent and the parts left to send would then be of two versions of the file, so the
upload never goes on with them. By default it stops, commits nothing and says how to go on;
with `restart` it aborts what it sent and starts again from the first byte of the file as it
is now, and says why (a file still being written restarts until the coordinator's restart
limit ends it). The policy is journalled with the upload (`Record.upload["on_change"]`), so a
resume in a later session keeps it; an upload journalled without one stops.
"""

from __future__ import annotations

from typing import Any

from ...core.errors import ChecksumMismatch, InputError, LocalFileChanged, TransferError
from ...core.upload_policies import ON_CHANGE
from ..seam import Change

HOW_TO_RESTART = ("to send it as it is now from the first byte, add it again with "
                  "--on-change restart (on_change: restart in a manifest or the API), or "
                  "remove the upload")


def checked(on_change: str) -> str:
    """`on_change`, or InputError naming the choices."""
    if on_change not in ON_CHANGE:
        raise InputError(f"an upload's on_change policy is one of {', '.join(ON_CHANGE)}, not "
                         f"{on_change!r}")
    return on_change


def on_change_of(journal: dict[str, Any]) -> dict[str, str]:
    """The policy as the journal keeps it: nothing for the default."""
    return {"on_change": "restart"} if restarts_on_change(journal) else {}


def restarts_on_change(journal: dict[str, Any]) -> bool:
    return journal.get("on_change") == "restart"


def stop_error(exc: LocalFileChanged) -> LocalFileChanged:
    """The error an upload stops with: what changed, that nothing was committed, and how to
    go on."""
    text = str(exc)
    if "nothing was committed" not in text:
        text += "; nothing was committed"
    return LocalFileChanged(f"{text}; {HOW_TO_RESTART}")


def judged(journal: dict[str, Any], exc: TransferError) -> tuple[Change, TransferError]:
    """What an upload does after `exc` ended an attempt (`seam.Direction.judge_change`)."""
    if isinstance(exc, ChecksumMismatch):
        return Change.FAIL, exc  # committed already: sending it again would not say more
    if isinstance(exc, LocalFileChanged) and not restarts_on_change(journal):
        return Change.FAIL, stop_error(exc)
    return Change.RESTART, exc
