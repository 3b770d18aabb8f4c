"""The log file: rotating, in the platform's log folder, and free of credentials.

laden logs addresses only after `strip_credentials`, and never logs headers or options; the
filter below is a second guard that masks anything shaped like a password in an address.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import re

from ..engine.errors import InputError

_USERINFO = re.compile(r"(\w+://)[^/@\s:]+:[^/@\s]+@")
LEVELS = ("debug", "info", "warning", "error")


class _MaskCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = _USERINFO.sub(r"\1***@", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def setup_logging(level: str | None) -> str | None:
    """Log to laden.log at `level` (default warning); returns the path, None when unwritable."""
    from ..store import paths

    name = (level or "warning").lower()
    if name not in LEVELS:
        raise InputError(f"--log-level must be one of {', '.join(LEVELS)}, not {level!r}")
    folder = paths.log_dir()
    path = os.path.join(folder, "laden.log")
    try:
        os.makedirs(folder, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=5 << 20, backupCount=3,
                                                       encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_MaskCredentials())
    logger = logging.getLogger("laden")
    logger.handlers[:] = [handler]
    logger.setLevel(name.upper())
    logger.propagate = False
    return path
