"""Uploads in the app, against moto: started from the add dialog (a file, a folder, a conflict
policy), bad input shown in the dialog, the detail screen in upload words, pause / resume /
remove on an upload row, and an upload restored when the app starts again."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Label, RadioButton, Select, Static

from laden.core.states import State
from laden.tui.app import open_app
from laden.tui.screens.add_modal import AddModal, upload_schemes
from laden.tui.screens.confirm_remove import ConfirmRemove
from laden.tui.screens.detail import DetailScreen
from laden.tui.widgets.connection_table import ConnectionTable
from laden.tui.widgets.download_facts import DownloadFacts
from laden.tui.widgets.segment_map import SegmentMap
from servers.fixtures import random_bytes
from sources.conftest import journal_records

from .helpers import SIZE, cell, notifications, state_of, wait_for, write_settings

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 8 * MiB


@pytest.fixture
def s3_settings(laden_dirs: dict[str, Path], downloads: Path, s3_server: Any) -> Path:
    """Settings that aim s3:// at moto, as a user's settings file would."""
    return write_settings(laden_dirs, download_dir=str(downloads), connections=2,
                          s3_endpoint_url=s3_server.endpoint_url)


def _file(folder: Path, name: str, size: int, seed: int) -> tuple[Path, bytes]:
    data = random_bytes(size, seed=seed)
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path, data


def _object(s3_server: Any, bucket: str, key: str) -> bytes:
    return bytes(s3_server.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def _unfinished(s3_server: Any, bucket: str) -> list[Any]:
    return list(s3_server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", ()))


def _sent(app: Any, upload_id: int) -> int:
    """What the app shows as acknowledged by the service (its done ranges)."""
    info = app.downloads.get(upload_id)
    return sum(end - start for start, end in info.done_ranges) if info is not None else 0


async def _fill_upload(pilot: Any, local: str, remote: str, conflict: str | None = None,
                       on_change: str | None = None) -> None:
    app = pilot.app
    await pilot.press("a")
    assert isinstance(app.screen, AddModal)
    await pilot.click("#add-upload")
    await pilot.pause()
    assert app.screen.query_one("#add-upload", RadioButton).value
    app.screen.query_one("#add-local", Input).value = local
    app.screen.query_one("#add-remote", Input).value = remote
    if conflict is not None:
        app.screen.query_one("#add-conflict", Select).value = conflict
    if on_change is not None:
        app.screen.query_one("#add-on-change", Select).value = on_change
    await pilot.click("#add-ok")


def test_the_services_that_take_uploads_come_from_the_known_sources_table() -> None:
    from laden.core.known_sources import KNOWN_SOURCES

    expected = [s for k in KNOWN_SOURCES if k.uploader for s in k.schemes]
    assert "s3" in upload_schemes() and upload_schemes() == expected
    assert "http" not in upload_schemes()


@pytest.mark.usefixtures("s3_settings")
async def test_upload_a_file_and_a_folder_from_the_dialog(s3_server: Any, s3_bucket: str,
                                                          tmp_path: Path,
                                                          laden_dirs: dict[str, Path]) -> None:
    path, data = _file(tmp_path / "out", "report.bin", 300_000, seed=91)
    folder = tmp_path / "run"
    _, first = _file(folder, "a.txt", 1000, seed=92)
    _, second = _file(folder, "sub/b.txt", 2000, seed=93)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await _fill_upload(pilot, str(path), f"s3://{s3_bucket}/reports/report.bin")
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the dialog closing")
        await wait_for(pilot, lambda: state_of(app, 1) is State.DONE, what="the upload")
        assert cell(app, 1, "name").startswith("↑ report.bin → s3://")
        assert any("Upload added" in n for n in notifications(app))
        assert any(n.startswith("Upload complete: report.bin → s3://")
                   for n in notifications(app))
        await _fill_upload(pilot, str(folder), f"s3://{s3_bucket}/run/", conflict="skip",
                           on_change="restart")
        await wait_for(pilot, lambda: app.screen is app.queue_screen, what="the dialog closing")
        await wait_for(pilot, lambda: len(app.downloads) == 3 and all(
            i.state is State.DONE for i in app.downloads.values()), what="the folder")
        assert any("2 uploads added" in n for n in notifications(app))
        assert {i.url for i in app.downloads.values() if i.id > 1} == {
            f"s3://{s3_bucket}/run/a.txt", f"s3://{s3_bucket}/run/sub/b.txt"}
    records = {r.url: r.upload for r in journal_records(laden_dirs["state"])}
    assert records[f"s3://{s3_bucket}/run/a.txt"]["conflict"] == "skip"
    assert records[f"s3://{s3_bucket}/run/a.txt"].get("on_change") == "restart"
    assert records[f"s3://{s3_bucket}/reports/report.bin"].get("on_change") is None  # stop
    assert _object(s3_server, s3_bucket, "reports/report.bin") == data
    assert _object(s3_server, s3_bucket, "run/a.txt") == first
    assert _object(s3_server, s3_bucket, "run/sub/b.txt") == second


@pytest.mark.usefixtures("s3_settings")
async def test_the_conflict_policy_fail_is_shown_when_the_name_is_taken(
        s3_server: Any, s3_bucket: str, tmp_path: Path) -> None:
    s3_server.put_object(s3_bucket, "taken.bin", b"someone else's")
    path, _ = _file(tmp_path, "taken.bin", 5000, seed=94)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await _fill_upload(pilot, str(path), f"s3://{s3_bucket}/taken.bin", conflict="fail")
        await wait_for(pilot, lambda: state_of(app, 1) is State.FAILED, what="the refusal")
        assert "exists already" in app.downloads[1].message
    assert _object(s3_server, s3_bucket, "taken.bin") == b"someone else's"


@pytest.mark.usefixtures("s3_settings")
@pytest.mark.parametrize(("local", "remote", "says"), [
    ("", "s3://b/k", "Enter the local file or folder"),
    ("{file}", "", "Enter where it goes"),
    ("{missing}", "s3://{bucket}/k", "is not there to upload"),
    ("{file}", "https://example.invalid/k", "cannot upload to http"),
    ("{file}", "not an address", "does not name a bucket"),
])
async def test_bad_upload_input_is_a_message_in_the_dialog(
        s3_bucket: str, tmp_path: Path, local: str, remote: str, says: str) -> None:
    path, _ = _file(tmp_path, "x.bin", 10, seed=95)
    fields = {"file": str(path), "missing": str(tmp_path / "nope.bin"), "bucket": s3_bucket}
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        await _fill_upload(pilot, local.format(**fields), remote.format(**fields))
        error = app.screen.query_one("#add-error", Static)
        await wait_for(pilot, lambda: says in str(error.content), what=says)
        text = str(error.content)
        assert "Traceback" not in text and "Error:" not in text, text
        assert isinstance(app.screen, AddModal), "the dialog stays open to fix the fields"
        assert app.focused is not None
        assert app.focused.id == ("add-remote" if local and not remote else "add-local")
        assert not app.downloads
        await pilot.press("escape")
        assert app.screen is app.queue_screen


@pytest.mark.usefixtures("s3_settings")
async def test_upload_details_and_its_keys(s3_server: Any, s3_bucket: str,
                                           tmp_path: Path) -> None:
    path, data = _file(tmp_path, "big.bin", 4 * PART + 12345, seed=96)
    url = f"s3://{s3_bucket}/big.bin"
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        upload_id = app.manager.add_upload(str(path), url, limit_rate=4 * MiB)
        await wait_for(pilot, lambda: _sent(app, upload_id) >= PART, timeout=30,
                       what="a part acknowledged")
        await pilot.press("enter")
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        sections = [str(label.content) for label in screen.query(Label).filter(".section")]
        assert sections == ["Parts", "Connections", "Upload"]
        assert [str(c.label) for c in screen.query_one(ConnectionTable).columns.values()][1:4] \
            == ["Part", "To read", "Read"]
        facts = screen.query_one(DownloadFacts).render()
        columns = facts.columns  # type: ignore[union-attr]
        rows = {str(label): str(value)
                for label, value in zip(columns[0].cells, columns[1].cells, strict=True)}
        assert rows["To"] == url and rows["From"] == str(path)
        assert "acknowledged by the service" in rows["Sent"] and "to send" in rows["Sent"]
        legend = str(screen.query_one(SegmentMap).render()).splitlines()[-1]
        assert "sent of 32.0 MiB" in legend and "acknowledged" in legend
        assert "→ " + url in str(screen.query_one("#detail-title", Static).content)

        await pilot.press("space")
        await wait_for(pilot, lambda: state_of(app, upload_id) is State.PAUSED, what="pause")
        kept = app.downloads[upload_id].done_ranges
        size = len(data)
        assert kept and all(s % PART == 0 and (e % PART == 0 or e == size) for s, e in kept), \
            "the done ranges are whole parts"
        await pilot.press("space")
        await wait_for(pilot, lambda: state_of(app, upload_id) in
                       (State.UPLOADING, State.CONNECTING), what="resume")
        await pilot.press("escape")

        await pilot.press("space")  # paused again from the queue, then removed
        await wait_for(pilot, lambda: state_of(app, upload_id) is State.PAUSED, what="pause")
        await pilot.press("delete")
        assert isinstance(app.screen, ConfirmRemove)
        assert not app.screen.query("#remove-file"), "an upload's file is never offered"
        assert "the local file stays" in str(app.screen.query(Static).last().content)
        await pilot.press("y")
        await wait_for(pilot, lambda: upload_id not in app.downloads, what="the removal")
    assert path.read_bytes() == data
    assert _unfinished(s3_server, s3_bucket) == [], "removing aborts the multipart upload"
    assert s3_server.client().list_objects_v2(Bucket=s3_bucket).get("Contents", []) == []


@pytest.mark.usefixtures("s3_settings")
async def test_an_upload_restores_when_the_app_starts(s3_server: Any, s3_bucket: str,
                                                      tmp_path: Path) -> None:
    path, data = _file(tmp_path, "later.bin", 3 * PART, seed=97)
    app = open_app()
    async with app.run_test(size=SIZE) as pilot:
        upload_id = app.manager.add_upload(str(path), f"s3://{s3_bucket}/later.bin",
                                           limit_rate=6 * MiB)
        await wait_for(pilot, lambda: _sent(app, upload_id) >= PART, timeout=30,
                       what="a part acknowledged")
        app.exit()  # quitting while it runs: it resumes by itself at the next start
    await asyncio.sleep(0)
    again = open_app()
    async with again.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: upload_id in again.downloads, what="the restored row")
        assert cell(again, upload_id, "name").startswith("↑ later.bin")
        await wait_for(pilot, lambda: state_of(again, upload_id) is State.DONE, timeout=30,
                       what="the restored upload")
        assert not any("starting again" in e.message for e in again.downloads[upload_id].errors)
    assert _object(s3_server, s3_bucket, "later.bin") == data
    assert _unfinished(s3_server, s3_bucket) == []
