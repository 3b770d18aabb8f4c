"""FTP test helpers: a throttled server for tests that stop a download midway, and a log of
the commands the server received."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest

from servers.fixtures import wait_for as wait_for  # shared with the other test folders
from servers.ftp import FTPTestServer

SLOW_RATE = 400_000  # bytes per second per data connection


@pytest.fixture(scope="module")
def slow_ftp_server() -> Iterator[FTPTestServer]:
    with FTPTestServer(download_limit=SLOW_RATE) as server:
        yield server


class CommandLog(logging.Handler):
    """The commands clients sent, from pyftpdlib's debug log: (session, command, argument)."""

    _LINE = re.compile(r"^(?P<session>\S+) <- (?P<command>[A-Z]+) ?(?P<argument>.*)$")

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.commands: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = self._LINE.match(record.getMessage())
        if match:
            self.commands.append((match["session"], match["command"], match["argument"]))

    def named(self, command: str) -> list[str]:
        return [argument for _, name, argument in self.commands if name == command]

    def sessions(self) -> set[str]:
        return {session for session, _, _ in self.commands}


@pytest.fixture
def ftp_commands() -> Iterator[CommandLog]:
    """Record every command the FTP servers receive during the test (pyftpdlib decides per
    connection whether to log, so only connections opened after this fixture are seen)."""
    logger = logging.getLogger("pyftpdlib")
    handler = CommandLog()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
