"""Fixtures for the app's tests (the shared ones live in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import write_settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings_file(laden_dirs: dict[str, Path], downloads: Path) -> Path:
    """A config.toml that sends downloads to the test's own folder."""
    return write_settings(laden_dirs, download_dir=str(downloads), connections=4)
