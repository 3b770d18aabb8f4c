"""Make the README's screenshots with the app itself, on real transfers caught mid-flight.

    python screenshots/make.py

A local test file server (127.0.0.1 only) caps each connection's rate so the downloads are
still running when the pictures are taken; an upload goes to an S3 emulator (moto, started
here on 127.0.0.1 as the test suite starts it) at a capped rate. State, settings, downloads and
the uploaded file live in a temporary folder, never in yours; it stands in as the home folder,
so the pictures show `~/Downloads` rather than a temporary path. Writes screenshots/queue.svg,
detail.svg, upload.svg, settings.svg and help.svg.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIZE = (120, 35)
MiB = 1024 * 1024


async def shoot(root: Path) -> None:
    from laden.tui.app import open_app
    from servers.fixtures import random_bytes
    from servers.http_server import Faults, FileServer
    from servers.s3 import S3Server

    (root / "home" / "Downloads").mkdir(parents=True)
    checkpoint = root / "home" / "runs" / "42" / "checkpoint-step-12000.safetensors"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(random_bytes(192 * MiB, 6))
    s3 = S3Server().start()
    s3.create_bucket("ml-checkpoints")
    config = Path(os.environ["LADEN_CONFIG_DIR"])
    config.mkdir(parents=True)
    # No download_dir: the default, the Downloads folder of the stand-in home.
    (config / "config.toml").write_text(
        f"connections = 8\nmax_active = 4\ns3_endpoint_url = \"{s3.endpoint_url}\"\n",
        encoding="utf-8")

    with FileServer() as server:
        def serve(name: str, size: int, seed: int, rate: int | None = None) -> str:
            faults = Faults(rate_per_connection=rate) if rate else None
            return server.add_file(f"/{name}", random_bytes(size, seed), faults=faults)

        paused = serve("ubuntu-24.04-desktop-amd64.iso", 48 * MiB, 3, rate=1 * MiB)
        done = serve("release-notes.pdf", 3 * MiB, 4)
        missing = f"{server.base_url}/backup-2025-12-31.tar.zst"  # answers 404
        iso = serve("debian-13.1.0-amd64-netinst.iso", 128 * MiB, 1, rate=384 * 1024)
        model = serve("model-00001-of-00002.safetensors", 96 * MiB, 2, rate=512 * 1024)
        queued = serve("dataset-2025-q3.parquet", 32 * MiB, 5, rate=512 * 1024)

        app = open_app([paused, done, missing, iso, model, queued])
        # First in the queue, so it runs beside the downloads. Four connections sending
        # 8 MiB parts, 2 MiB/s in all: a part acknowledged every 4 s or so.
        upload = app.manager.add_upload(
            str(checkpoint), f"s3://ml-checkpoints/runs/42/{checkpoint.name}",
            connections=4, limit_rate=2 * MiB)
        async with app.run_test(size=SIZE) as pilot:
            await _until(pilot, lambda: len(app.downloads) == 7)
            by_name = {info.name: info.id for info in app.downloads.values()}
            ubuntu = by_name["ubuntu-24.04-desktop-amd64.iso"]
            await _until(pilot, lambda: (app.downloads[ubuntu].fraction or 0) > 0.35)
            # Three at a time from now on (the upload and two downloads), so the last
            # download is seen waiting in the queue.
            app.manager.apply_config(app.manager.config.replace(max_active=3))
            app.manager.pause(ubuntu)
            await pilot.pause(7.0)  # some speed history, the connections well under way
            app.queue_screen.table.select(by_name["debian-13.1.0-amd64-netinst.iso"])
            await pilot.pause(0.3)
            app.save_screenshot("queue.svg", str(HERE))
            await pilot.press("enter")
            await pilot.pause(0.6)
            app.save_screenshot("detail.svg", str(HERE))
            await pilot.press("escape")
            # The upload with some parts acknowledged and four more on their way.
            await _until(pilot, lambda: _acknowledged(app.downloads[upload]) >= 3 * 8 * MiB,
                         timeout=40)
            app.queue_screen.table.select(upload)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await pilot.pause(0.6)
            app.save_screenshot("upload.svg", str(HERE))
            await pilot.press("escape", "s")
            await pilot.pause(0.6)
            app.save_screenshot("settings.svg", str(HERE))
            await pilot.press("escape", "question_mark")
            await pilot.pause(0.6)
            app.save_screenshot("help.svg", str(HERE))
            await pilot.press("escape")
    s3.stop()


def _acknowledged(info: object) -> int:
    return sum(end - start for start, end in info.done_ranges)  # type: ignore[attr-defined]


async def _until(pilot: object, predicate: object, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():  # type: ignore[operator]
        if loop.time() > deadline:
            raise SystemExit("the downloads did not get going; is 127.0.0.1 reachable?")
        await pilot.pause(0.1)  # type: ignore[attr-defined]


def main() -> int:
    sys.path.insert(0, str(HERE.parent / "tests"))
    from servers.sdk_env import isolate_sdk_environment

    # No real cloud, no real credential: the emulator's test keys, as in the test suite.
    isolate_sdk_environment()
    with tempfile.TemporaryDirectory(prefix="laden-shots-") as tmp:
        root = Path(tmp)
        for name in ("state", "logs"):
            os.environ[f"LADEN_{name.upper()}_DIR"] = str(root / name)
        os.environ["HOME"] = str(root / "home")
        os.environ["LADEN_CONFIG_DIR"] = str(root / "home" / ".config" / "laden")
        asyncio.run(shoot(root))
    for name in ("queue", "detail", "upload", "settings", "help"):
        print(HERE / f"{name}.svg")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
