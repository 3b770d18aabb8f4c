"""Object stores log their requests too (issue 21)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from laden.engine.states import State
from servers.fixtures import random_bytes

from .conftest import manager
from .stores import S3Store


def test_s3_requests_are_logged(s3_store: S3Store, downloads: Path,
                                caplog: pytest.LogCaptureFixture) -> None:
    server, bucket = s3_store.server, s3_store.bucket
    data = random_bytes(300_000, seed=2142)
    server.put_object(bucket, "logged.bin", data)
    url = s3_store.url("logged.bin")
    with caplog.at_level(logging.DEBUG, logger="laden.requests"), manager() as m:
        info = m.wait(m.add(url, str(downloads), **s3_store.options()))
    assert info.state is State.DONE, info.message
    lines = [r.getMessage() for r in caplog.records if r.name == "laden.requests"]
    assert any(line.startswith(f"HEAD {url} -> 200 in ") for line in lines), lines
    assert any(line.startswith(f"GET {url}") and "-> 20" in line for line in lines), lines
