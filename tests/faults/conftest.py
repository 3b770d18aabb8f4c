"""Fixtures of the trust suite, and its figures printed after the run (kills, fault scenarios,
bad inputs, secrets) so the closing note of issue 7 can quote them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


def _mount_tmpfs(folder: Path, size: str) -> str | None:
    """Mount a tmpfs of `size` on `folder`; the reason when this machine does not allow it."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0777", "tmpfs",
                               str(folder)], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


@pytest.fixture
def small_disk_of(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Make small real file systems (tmpfs), so a full disk is a real ENOSPC from the kernel.
    Needs root (or CAP_SYS_ADMIN); elsewhere the tests that need it are skipped, and
    test_disk.py's injected-ENOSPC tests cover the same promises."""
    mounted: list[Path] = []

    def make(size: str) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        problem = _mount_tmpfs(folder, size)
        if problem is not None:
            pytest.skip(f"cannot mount a small tmpfs here ({problem})")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=10)


@pytest.fixture
def small_disk(small_disk_of: Callable[[str], Path]) -> Path:
    """An 8 MiB file system of its own."""
    return small_disk_of("8m")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
