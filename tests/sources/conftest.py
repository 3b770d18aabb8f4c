"""Fixtures for the object-store tests: a `store` on each emulator, and ways to watch reads."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from laden.core.config import Config
from laden.core.options import DownloadOptions
from laden.engine.manager import DownloadManager
from laden.sources.base import RangeReader, RemoteInfo
from servers.fixtures import wait_for as wait_for  # shared with the other test folders

from .stores import AzureMLStore, AzureStore, GcsStore, HubStore, S3Store, Store

# Small segments, so that a few MB already make many ranged reads; short timeouts.
FAST = Config(min_segment_size=64 * 1024, connect_timeout=5, stall_timeout=5,
              checkpoint_interval=0.2, retries=2)
STORES = ("s3", "gs", "az", "hf", "azureml")


@pytest.fixture
def s3_store(s3_server: Any, s3_bucket: str, tmp_path: Path) -> S3Store:
    return S3Store(s3_server, s3_bucket, tmp_path)


@pytest.fixture
def gs_store(gcs_server: Any, gcs_bucket: str, tmp_path: Path) -> GcsStore:
    return GcsStore(gcs_server, gcs_bucket, tmp_path)


@pytest.fixture
def az_store(azurite_server: Any, azure_container: str, tmp_path: Path) -> AzureStore:
    return AzureStore(azurite_server, azure_container, tmp_path)


@pytest.fixture
def hf_store(hf_hub: Any, tmp_path: Path) -> HubStore:
    return HubStore(hf_hub, tmp_path)


@pytest.fixture
def azureml_store(azureml: Any, tmp_path: Path) -> AzureMLStore:
    return AzureMLStore(azureml, tmp_path)


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest) -> Store:
    return request.getfixturevalue(f"{request.param}_store")  # type: ignore[no-any-return]


def manager(config: Config = FAST, **kwargs: Any) -> DownloadManager:
    return DownloadManager(config, **kwargs)


class RangeLog:
    """Every `open_range` a source class served during a test: (start, end) pairs."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int | None]] = []

    @property
    def starts(self) -> set[int]:
        return {start for start, _ in self.ranges}


@pytest.fixture
def range_log(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], RangeLog]:
    def watch(source_class: type) -> RangeLog:
        log = RangeLog()
        original = source_class.open_range

        def open_range(self: Any, remote: Any, start: int, end: int | None,
                       options: Any) -> RangeReader:
            log.ranges.append((start, end))
            return original(self, remote, start, end, options)  # type: ignore[no-any-return]

        monkeypatch.setattr(source_class, "open_range", open_range)
        return log

    return watch


@pytest.fixture
def corrupt_reads(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], None]:
    """Make a source class hand out wrong bytes: the first byte of the file is flipped."""

    class Flipped:
        def __init__(self, reader: RangeReader) -> None:
            self._reader, self._first = reader, True

        def readinto(self, buffer: memoryview) -> int:
            n = self._reader.readinto(buffer)
            if self._first and n:
                buffer[0] ^= 0xFF
                self._first = False
            return n

        def close(self) -> None:
            self._reader.close()

    def corrupt(source_class: type) -> None:
        original = source_class.open_range

        def open_range(self: Any, remote: Any, start: int, end: int | None,
                       options: Any) -> RangeReader:
            reader = original(self, remote, start, end, options)
            return Flipped(reader) if start == 0 else reader

        monkeypatch.setattr(source_class, "open_range", open_range)

    return corrupt



def laden(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command line in a subprocess (the environment carries the test folders)."""
    return subprocess.run(
        [sys.executable, "-m", "laden", *args], capture_output=True, text=True,
        timeout=timeout, env={**os.environ, "COLUMNS": "120"},
    )


def laden_process(*args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "laden", *args], env={**os.environ, "COLUMNS": "120"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def journal_records(state_dir: Path) -> list[Any]:
    """The downloads the journal holds, read as `laden list` does (no lock needed)."""
    from laden.store.journal import Journal

    if not (state_dir / "journal.sqlite3").exists():
        return []
    journal = Journal(str(state_dir))
    try:
        return journal.load_all()
    finally:
        journal.close()


def journal_done(state_dir: Path) -> int:
    """Bytes the journal records as on disk, over all downloads."""
    return sum(end - start for r in journal_records(state_dir) for start, end in r.done_ranges)


class KeptRecords(logging.Handler):
    """Keeps every record it is given: a handler of a test's own on "laden.requests", since an
    in-process command line run earlier may have stopped the "laden" logger from propagating
    to caplog's."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def requests_asked() -> Iterator[list[list[str]]]:
    """The (method, address) of each request laden logs while the block runs."""
    logger, kept = logging.getLogger("laden.requests"), KeptRecords()
    asked: list[list[str]] = []
    logger.addHandler(kept)
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield asked
    finally:
        logger.setLevel(level)
        logger.removeHandler(kept)
        for record in kept.records:
            method, _, rest = record.getMessage().partition(" ")
            if rest.startswith("metadata "):
                method, rest = "GET metadata", rest.removeprefix("metadata ")
            asked.append([method, rest.split(" ", 1)[0]])


def probed_then_checked(store: Store, key: str) -> tuple[RemoteInfo, RemoteInfo, list[list[str]]]:
    """A probe of `key`, then a rerun's check of it (`current_version`), and the requests the
    two made."""
    source = store.source_class(Config())
    options = DownloadOptions(**store.options())
    try:
        with requests_asked() as asked:
            probed = source.probe(store.url(key), options)
            now = source.current_version(store.url(key), options)
    finally:
        source.close()
    return probed, now, asked
