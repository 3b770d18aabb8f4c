"""Pytest fixtures and data helpers for the HTTP file server (imported by tests/conftest.py)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator

import pytest

from .http_server import FileServer


def random_bytes(n: int, seed: int = 0) -> bytes:
    """`n` deterministic pseudo-random bytes; about 0.4 s for 200 MB.

    SHAKE-128 output is used instead of random.Random.randbytes because it is ~3x faster,
    and it never repeats, so a part written at the wrong offset cannot go unnoticed. The
    bytes for a shorter `n` are a prefix of those for a longer one (same seed).
    """
    return hashlib.shake_128(f"laden-test-data:{seed}".encode()).digest(n)


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, step: float = 0.02,
             what: str = "a condition") -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    """A started FileServer on 127.0.0.1; stopped when the test ends."""
    with FileServer() as server:
        yield server
