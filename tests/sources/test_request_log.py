"""Object stores log their requests too (issue 21)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from laden.core.states import State
from servers.fixtures import random_bytes

from .conftest import KeptRecords, manager
from .stores import S3Store


def test_s3_requests_are_logged(s3_store: S3Store, downloads: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    server, bucket = s3_store.server, s3_store.bucket
    data = random_bytes(300_000, seed=2142)
    server.put_object(bucket, "logged.bin", data)
    url = s3_store.url("logged.bin")
    # A handler of its own: a command line run in this process earlier (the in-process bad
    # input tests) may have set the "laden" logger not to propagate to caplog's.
    logger = logging.getLogger("laden.requests")
    handler = KeptRecords()
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.DEBUG, logger="laden.requests"), manager() as m:
            info = m.wait(m.add(url, str(downloads), **s3_store.options()))
    finally:
        logger.removeHandler(handler)
    assert info.state is State.DONE, info.message
    lines = [r.getMessage() for r in handler.records]
    # The probe: a GET of the whole object, closed after the headers (it is larger than a
    # segment), then the ranges.
    assert any(line.startswith(f"GET {url} -> 200 in ") for line in lines), lines
    assert any(line.startswith(f"GET {url} bytes ") and "-> 206" in line for line in lines), lines
