"""Every error laden raises on purpose, in one hierarchy.

```
LadenError                      base: one clear line for the user in str(exc)
├── InputError                  the caller asked for something invalid (bad URL, option, checksum)
│   ├── UnsupportedSource       no source handles this address
│   └── SettingsError           the settings file is broken (names the file and line)
├── StateDirBusy                another laden process owns the state directory
├── JournalError                the session journal cannot be used
├── UnknownDownload             no download with that id
├── TransferError               a download did not succeed
│   ├── RemoteError             the server said no, or the network failed
│   │   ├── Retryable           worth trying again (timeouts, resets, 5xx)
│   │   │   ├── SlowDown        too many requests (429/503): retry with fewer connections
│   │   │   └── HostNotFound    the name does not resolve: one more try, for a DNS hiccup
│   │   └── Permanent           trying again will not help (404, 410, 401/403 after retry)
│   ├── RemoteChanged           the remote file changed under us: restart, never stitch
│   │   └── UploadLost          the service no longer knows an unfinished upload: start again
│   │       └── UploadUnusable  still held, but it cannot go on: aborted, start again
│   ├── LocalFileChanged        the file being uploaded changed: never commit a mixed object
│   ├── RangeNotSupported       the server ignored a Range request
│   ├── ChecksumMismatch        the bytes on disk are not what was promised
│   ├── FormatError             a model file is cut short or damaged (see `formats`)
│   ├── DiskError               the local disk refused a write (full, read-only, gone)
│   └── DestinationExists       the final name is taken and the conflict policy says stop
└── Cancelled                   the download was cancelled or paused while waiting
```

Only the user interfaces turn these into messages: the CLI prints `str(exc)` as one line and exits
with `exc.exit_code`; the TUI shows it in the queue and the detail screen. A download's failure
is classified for schedulers by `exit_code_of`: 4 (`PERMANENT_EXIT`) when trying the same
work again cannot succeed, 1 when it may.
"""

from __future__ import annotations


class LadenError(Exception):
    """Base class: `str(exc)` is one line a person can act on."""

    exit_code = 1
    """The command line's exit status for this error (see `exit_code_of`)."""


class InputError(LadenError, ValueError):
    """The caller asked for something invalid."""

    exit_code = 2


class UnsupportedSource(InputError):
    """No source handles this address."""


class SettingsError(InputError):
    """The settings file cannot be read; the message names the file and line."""


class StateDirBusy(LadenError):
    """Another laden process owns the state directory."""

    exit_code = 3


class JournalError(LadenError):
    """The session journal cannot be opened or written.

    Attributes:
        no_space: the journal's disk is full (the journal itself is fine).
    """

    def __init__(self, message: str, *, no_space: bool = False) -> None:
        super().__init__(message)
        self.no_space = no_space


class UnknownDownload(LadenError, KeyError):
    """No download has that id."""

    exit_code = 2

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown download"


class TransferError(LadenError):
    """A download did not succeed."""


class RemoteError(TransferError):
    """The server refused, or the network failed.

    Attributes:
        status: the HTTP (or protocol) status, when there was one.
        retry_after: seconds the server asked us to wait, when it said.
    """

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class Retryable(RemoteError):
    """A timeout, reset or server error: worth another attempt after a pause."""


class SlowDown(Retryable):
    """The server asked for fewer requests (429, 503): retry with fewer connections."""


class HostNotFound(Retryable):
    """The host's name does not resolve. One more try covers a DNS hiccup; five only make a
    typo'd address take a quarter of a minute to say so."""

    def __init__(self, host: str) -> None:
        super().__init__(f"cannot resolve host {host}: no such name, or no DNS server answered")
        self.host = host


class Permanent(RemoteError):
    """Trying again will not help (not found, gone, forbidden)."""


class RemoteChanged(TransferError):
    """The remote file is not the version we started; restart from zero, never stitch."""


class UploadLost(RemoteChanged):
    """The service no longer knows an unfinished upload (expired, or aborted by someone else):
    its parts are gone, so the upload starts again from the first byte."""


class UploadUnusable(UploadLost):
    """The service still holds the unfinished upload, but it cannot be continued (it holds
    other bytes than were sent, or cannot append): it is aborted at the service, never left
    there (a GCS session could still write the object), and the upload starts again."""


class LocalFileChanged(TransferError):
    """The local file of an upload changed after the upload began: what was sent and what is
    left to send would mix two versions, so nothing is committed. A resume starts again from
    the first byte of the file as it is then."""


class RangeNotSupported(TransferError):
    """The server answered a ranged request with the whole file."""


class ChecksumMismatch(TransferError):
    """The finished bytes do not match the expected checksum."""

    def __init__(self, algorithm: str, expected: str, actual: str, *, source: str) -> None:
        super().__init__(
            f"{algorithm} checksum mismatch ({source}): expected {expected}, got {actual}"
        )
        self.algorithm = algorithm
        self.expected = expected
        self.actual = actual
        self.source = source


class FormatError(TransferError):
    """A model file's structure is broken: a `.safetensors` tensor past the end of the file,
    a zip checkpoint without its central directory, ... The bytes are the ones the server
    sent (their size and any checksum matched), so fetching them again cannot help.

    Attributes:
        kind: what the file was checked as ("safetensors", "GGUF", ...).
    """

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class DiskError(TransferError):
    """The local disk refused a write: full, read-only, or the folder is gone.

    Attributes:
        no_space: the disk (or quota) is full; the download can go on once space is freed.
    """

    def __init__(self, message: str, *, no_space: bool = False) -> None:
        super().__init__(message)
        self.no_space = no_space


class DestinationExists(TransferError):
    """The final name is taken and the conflict policy does not allow replacing it."""

    exit_code = 1


class Cancelled(LadenError):
    """The work stopped because the download was paused or cancelled."""


PERMANENT_EXIT = 4
"""A download failed in a way that running the same command again cannot fix (not found,
forbidden, a checksum that does not match, a name the conflict policy keeps). 1 stays the code
for a failure worth another try, so a Kubernetes `podFailurePolicy` can tell them apart."""


def exit_code_of(error: BaseException) -> int:
    """The exit code a failure means: the one table from error classes to exit codes.

    2 (bad input) and 4 (`PERMANENT_EXIT`) are permanent, 3 (the state folder is busy) and 1
    (timeouts, resets, 5xx after every retry, a remote file that kept changing, a bug) are
    worth trying again.
    """
    if isinstance(error, Permanent | ChecksumMismatch | FormatError | DestinationExists):
        return PERMANENT_EXIT
    if isinstance(error, LadenError):
        return error.exit_code
    return 1


def is_permanent(error: BaseException) -> bool:
    """Trying again cannot help (see `exit_code_of`)."""
    return exit_code_of(error) in (InputError.exit_code, PERMANENT_EXIT)
