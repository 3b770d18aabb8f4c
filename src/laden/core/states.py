"""The states of a download and the moves allowed between them.

The engine changes state only through `check_transition`, so an illegal move is a bug that
shows up as an exception instead of a download stuck in a state nothing leaves.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    """Where a download is; its value is the word the command line and `--json` show."""

    QUEUED = "queued"
    """Waiting for its turn (`Config.max_active` downloads run at a time)."""
    CONNECTING = "connecting"
    """Asking the server for the file's size and version."""
    DOWNLOADING = "downloading"
    """Bytes are arriving."""
    UPLOADING = "uploading"
    """Bytes are leaving: an upload's parts are being sent."""
    PAUSED = "paused"
    """Stopped with its bytes kept; `resume` goes on."""
    VERIFYING = "verifying"
    """Every byte is there and the file is being hashed."""
    DONE = "done"
    """The file is at its final name."""
    FAILED = "failed"
    """Stopped by an error (`DownloadInfo.message` says which); `resume` tries again."""
    CANCELLED = "cancelled"
    """Stopped for good, its partial file deleted."""

    @property
    def is_active(self) -> bool:
        """Connecting, downloading or verifying: a transfer is working on it."""
        return self in ACTIVE

    @property
    def is_moving(self) -> bool:
        """Downloading or uploading: bytes are moving."""
        return self in MOVING

    @property
    def is_finished(self) -> bool:
        """Done, failed or cancelled: nothing happens until someone asks for it."""
        return self in FINISHED

    @property
    def is_settled(self) -> bool:
        """Finished or paused: nothing happens until someone asks for it, and `wait` returns."""
        return self in SETTLED


MOVING = frozenset({State.DOWNLOADING, State.UPLOADING})
"""Bytes are moving, one way or the other (the state a transfer's direction names)."""
ACTIVE = frozenset({State.CONNECTING, *MOVING, State.VERIFYING})
"""The states in which a transfer is working on the download."""
FINISHED = frozenset({State.DONE, State.FAILED, State.CANCELLED})
"""Done, failed or cancelled: the download has ended."""
SETTLED = FINISHED | {State.PAUSED}
"""Finished or paused: where a download stays until someone asks for it (`wait` returns, the
command line stops watching it)."""

_WHILE_MOVING = frozenset(
    {State.VERIFYING, State.DONE, State.PAUSED, State.FAILED, State.CANCELLED, State.CONNECTING,
     State.QUEUED}
)
_ALLOWED: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.CONNECTING, State.PAUSED, State.CANCELLED, State.FAILED}),
    State.CONNECTING: frozenset(
        {State.DOWNLOADING, State.UPLOADING, State.VERIFYING, State.DONE, State.PAUSED,
         State.FAILED, State.CANCELLED, State.QUEUED}
    ),
    State.DOWNLOADING: _WHILE_MOVING,
    State.UPLOADING: _WHILE_MOVING,
    State.VERIFYING: frozenset(
        {State.DONE, State.FAILED, State.PAUSED, State.CANCELLED, State.CONNECTING,
         State.QUEUED}
    ),
    State.PAUSED: frozenset({State.QUEUED, State.CANCELLED, State.FAILED}),
    State.FAILED: frozenset({State.QUEUED, State.CANCELLED, State.PAUSED, State.VERIFYING}),
    State.DONE: frozenset({State.VERIFYING, State.QUEUED, State.FAILED}),
    State.CANCELLED: frozenset({State.QUEUED}),
}


class IllegalTransition(RuntimeError):
    """A state change the engine never makes: a bug, not a user error."""


def check_transition(current: State, new: State) -> None:
    """Refuse a state change the engine never makes.

    Raises:
        IllegalTransition: `new` cannot follow `current`.
    """
    if new is not current and new not in _ALLOWED[current]:
        raise IllegalTransition(f"a download cannot go from {current.value} to {new.value}")
