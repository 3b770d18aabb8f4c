"""What the progress displays say while laden works (issue 21)."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from laden.cli.progress import RichDisplay
from laden.core.snapshots import DownloadInfo
from laden.core.states import State
from servers.fixtures import random_bytes
from servers.http_server import Faults


def _info(**changes: object) -> DownloadInfo:
    values: dict[str, object] = dict(
        id=1, url="http://127.0.0.1/f.bin", final_url=None, source="http",
        dest="/tmp/f.bin", state=State.DOWNLOADING, size=300 * 1024 * 1024,
        done=int(25.5 * 1024 * 1024), speed=9.8 * 1024 * 1024, eta=28.0)
    values.update(changes)
    return DownloadInfo(**values)  # type: ignore[arg-type]


def _rich_output(*infos: DownloadInfo) -> str:
    out = io.StringIO()
    display = RichDisplay(Console(file=out, width=160, force_terminal=False,
                                  color_system=None))
    display.update(infos)
    display.close()
    return out.getvalue()


def test_the_progress_line_speaks_binary_units_only() -> None:
    text = _rich_output(_info())
    assert "25.5 MiB/300.0 MiB" in text
    assert "9.8 MiB/s" in text
    assert "MB/s" not in text and " MB" not in text and "kB" not in text


def test_a_retry_shows_its_reason_and_its_wait_on_the_terminal() -> None:
    import time

    from laden.core.snapshots import ErrorRecord

    text = _rich_output(_info(state=State.CONNECTING, retry_at=time.time() + 3.2,
                              errors=(ErrorRecord(0.0, "127.0.0.1:9 refused the connection"),)))
    assert "127.0.0.1:9 refused the connection: retry in 3s" in text


class _Asked:
    """A manager that counts the snapshots asked of it."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        self.asked: list[int] = []

    def get(self, download_id: int) -> DownloadInfo:
        self.asked.append(download_id)
        return self._manager.get(download_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._manager, name)


def test_the_lines_come_from_the_events_not_from_asking_again(
    http_server, downloads: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.helpers import FAST, manager
    from laden.cli.commands import watch

    files = {f"/w{n}.bin": random_bytes(300_000 + n, seed=n) for n in range(6)}
    urls = [http_server.add_file(name, data, faults=Faults(rate_per_connection=400_000))
            for name, data in files.items()]
    with manager(FAST.replace(max_active=2)) as m:
        asked = _Asked(m)
        ids = [m.add(url, str(downloads) + "/") for url in urls]
        code = watch(asked, ids, argparse.Namespace(quiet=False, json=False))
    assert code == 0
    lines = capsys.readouterr().out.splitlines()  # not a terminal: the plain lines
    for download_id, name in zip(ids, files, strict=True):
        assert f"[{download_id}] {name[1:]} done 100.0%" in "\n".join(lines)
    # Once to start from (the summary shows what `wait` returned): never again at each
    # change of state.
    assert sorted(asked.asked) == sorted(ids)
