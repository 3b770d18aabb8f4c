"""What the progress displays say while laden works (issue 21)."""

from __future__ import annotations

import io

from rich.console import Console

from laden.cli.progress import RichDisplay
from laden.core.snapshots import DownloadInfo
from laden.core.states import State


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
