"""The log file: rotating, in the platform's log folder, and free of credentials.

laden logs addresses only after `strip_credentials`, and never logs headers or options; the
filter below is a second guard that masks anything shaped like a password in an address. Every
record is made printable, so `less laden.log` or `tail -f` never replays a server's escape
sequences, and a newline in a message cannot forge a record of its own.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from ..core.errors import InputError
from ..core.printable import printable

_USERINFO = re.compile(r"(\w+://)[^/@\s:]+:[^/@\s]+@")
LEVELS = ("debug", "info", "warning", "error")


class _MaskCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _USERINFO.sub(r"\1***@", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class _PrintableFormatter(logging.Formatter):
    """One line per record, escapes shown as text; a traceback keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:
        return printable(super().formatException(ei), newlines=True)

    def formatStack(self, stack_info: str) -> str:
        return printable(super().formatStack(stack_info), newlines=True)


class _LogFile(logging.Handler):
    """laden.log, rotated at 5 MiB with three kept, opened at its first record: most commands
    log nothing at the default level, and need neither the file nor logging.handlers (whose
    imports cost every start-up a few ms). A folder or file that cannot be written drops the
    records, as no log file at all would."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self._file: logging.Handler | None = None
        self._unwritable = False

    def emit(self, record: logging.LogRecord) -> None:  # called under the handler's lock
        if self._file is None and not self._unwritable:
            import logging.handlers

            try:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._file = logging.handlers.RotatingFileHandler(
                    self.path, maxBytes=5 << 20, backupCount=3, encoding="utf-8")
            except OSError:
                self._unwritable = True
            else:
                self._file.setFormatter(self.formatter)
        if self._file is not None:
            self._file.emit(record)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


def setup_logging(level: str | None) -> str | None:
    """Log to laden.log at `level` (default warning); returns the path."""
    from ..store import paths

    name = (level or "warning").lower()
    if name not in LEVELS:
        raise InputError(f"--log-level must be one of {', '.join(LEVELS)}, not {level!r}")
    folder = paths.log_dir()
    path = os.path.join(folder, "laden.log")
    handler = _LogFile(path)
    handler.setFormatter(_PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_MaskCredentials())
    logger = logging.getLogger("laden")
    logger.handlers[:] = [handler]
    logger.setLevel(name.upper())
    logger.propagate = False
    return path
