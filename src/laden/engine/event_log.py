"""What happens to each download, in laden.log: every event but progress, as one line.

The manager hands each event here before its listeners, so the log tells the same story as
the screen: added (with the address, credentials removed), each change of state with its
reason, restarts from zero and why, checksum verdicts, removals. Failures are warnings, so
they are in the log at the default level; the rest is info. Retries are logged where the
wait is decided (`Coordinator.backoff`), requests by the sources (`sources.requests_log`).
"""

from __future__ import annotations

import logging

from ..core.states import State
from ..core.urls import strip_credentials
from . import events

log = logging.getLogger("laden.events")


def log_event(event: events.Event) -> None:
    """One line for `event` (none for progress, which comes several times a second)."""
    if isinstance(event, events.Progress | events.Retrying) or not log.isEnabledFor(
            logging.WARNING):
        return
    number = event.download_id
    if isinstance(event, events.Added):
        log.info("download %s added: %s -> %s", number, strip_credentials(event.info.url),
                 event.info.dest)
    elif isinstance(event, events.StateChanged):
        message = event.info.message
        said = f": {message}" if message and event.new in _SAID else ""
        level = logging.WARNING if event.new is State.FAILED else logging.INFO
        log.log(level, "download %s: %s -> %s%s", number, event.old.value, event.new.value,
                said)
    elif isinstance(event, events.Restarted):
        log.warning("download %s starts again from zero: %s", number, event.reason)
    elif isinstance(event, events.Verified):
        log.log(logging.INFO if event.ok else logging.WARNING, "download %s: verified: %s",
                number, "ok" if event.ok else "FAILED")
        for checksum in event.info.checksums:
            if checksum.verified is None:
                continue
            verdict = "matches" if checksum.verified else (
                f"MISMATCH, expected {checksum.expected}, got {checksum.actual}")
            log.log(logging.INFO if checksum.verified else logging.WARNING,
                    "download %s: %s (%s) %s", number, checksum.algorithm, checksum.origin,
                    verdict)
    elif isinstance(event, events.Removed):
        log.info("download %s removed", number)
    elif not isinstance(event, _TOLD_BY_STATE_CHANGES):
        log.info("download %s: %s", number, type(event).__name__)


_TOLD_BY_STATE_CHANGES = (events.Started, events.Paused, events.Resumed, events.Completed,
                          events.Failed)
_SAID = frozenset({State.FAILED, State.PAUSED, State.DONE, State.QUEUED})
"""States whose message says why (a failure, a pause, a note on a finished file)."""
