"""The one way out of the command line: everything laden prints passes through `printable`.

`main` swaps stdout and stderr for `PrintableStream`s while a command runs, so every message,
progress line, `laden list` row and argparse error is made safe in one place instead of at each
`print`: an ETag, a name or an address holding `ESC [2J`, U+009B or U+202E shows as `\\x1b[2J`,
`\\x9b` or `\\u202e`. Only rich's live display writes to the real stream, since its own escape
sequences are the point; it makes the text it shows printable itself.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from ..core.errors import LadenError
from ..core.printable import printable


class OutputLost(LadenError):
    """What laden prints cannot be written (a full disk, an I/O error): one line and exit 1,
    not a traceback. A closed pipe stays a BrokenPipeError, which ends a command quietly."""


class PrintableStream:
    """A text stream that writes to `stream` only what `printable` leaves, newlines kept."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        with _output_lost():
            self.stream.write(printable(text, newlines=True))
        return len(text)

    def flush(self) -> None:
        with _output_lost():
            self.stream.flush()

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        # flush, isatty, fileno, encoding...: the real stream's.
        return getattr(self.stream, name)


@contextmanager
def _output_lost() -> Iterator[None]:
    """An OSError of the stream as `OutputLost`; a closed pipe stays as it is."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputLost(f"cannot write the output: {exc.strerror or exc}") from None


def real_stream(stream: TextIO) -> TextIO:
    """The stream under a `PrintableStream`, for a display that sends its own escapes."""
    return stream.stream if isinstance(stream, PrintableStream) else stream


@contextmanager
def printable_output() -> Iterator[None]:
    """Everything printed inside goes through `printable`."""
    saved = sys.stdout, sys.stderr
    # None: no console at all (pythonw), where print writes nothing anyway.
    if sys.stdout is not None and not isinstance(sys.stdout, PrintableStream):
        sys.stdout = PrintableStream(sys.stdout)  # type: ignore[assignment]
    if sys.stderr is not None and not isinstance(sys.stderr, PrintableStream):
        sys.stderr = PrintableStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
