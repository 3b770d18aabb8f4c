"""A stand-in for `DownloadManager` holding fixed snapshots, for screenshots that never change.

It answers the reads the app makes (list, get, subscribe, config) with the same data every
time: no clock, no speeds that move, no ports or temporary paths in the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from laden.core.config import Config
from laden.core.errors import UnknownDownload
from laden.core.snapshots import ChecksumInfo, ConnectionInfo, DownloadInfo, ErrorRecord
from laden.core.states import State

MiB = 1024 * 1024
T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC


class StillManager:
    def __init__(self, infos: list[DownloadInfo]) -> None:
        self.config = Config(download_dir="/home/ada/Downloads")
        self._infos = {info.id: info for info in infos}

    def subscribe(self, listener: Callable[[Any], None]) -> Callable[[], None]:
        return lambda: None

    def list(self) -> list[DownloadInfo]:
        return sorted(self._infos.values(), key=lambda i: i.position)

    def get(self, download_id: int) -> DownloadInfo:
        try:
            return self._infos[download_id]
        except KeyError:
            raise UnknownDownload(f"no download with id {download_id}") from None

    def apply_config(self, config: Config) -> None:
        self.config = config

    def close(self) -> None:
        pass


def _info(download_id: int, name: str, state: State, size: int | None, done: int,
          **fields: Any) -> DownloadInfo:
    values: dict[str, Any] = {
        "id": download_id,
        "url": f"https://mirror.example.org/pub/{name}",
        "final_url": None,
        "source": "http",
        "dest": f"/home/ada/Downloads/{name}",
        "state": state,
        "size": size,
        "done": done,
        "speed": 0.0,
        "eta": None,
        "done_ranges": ((0, done),) if done else (),
        "created": T0 + download_id * 60,
        "position": float(download_id),
        "options": {"netrc": True},
    }
    values.update(fields)
    return DownloadInfo(**values)


def _connections(size: int, count: int, written: float) -> tuple[ConnectionInfo, ...]:
    part = size // count
    return tuple(
        ConnectionInfo(number=n, start=n * part, end=(n + 1) * part,
                       position=n * part + int(part * written * (0.6 + 0.1 * (n % 4))),
                       bytes=int(part * written * (0.6 + 0.1 * (n % 4))),
                       speed=1.5 * MiB + n * 131072, retries=n % 3 // 2,
                       last_status="206 reading")
        for n in range(count)
    )


def busy_iso() -> DownloadInfo:
    size = 1200 * MiB
    connections = _connections(size, 8, 0.55)
    done_ranges = tuple((c.start, c.position) for c in connections)
    return _info(
        1, "debian-13.1.0-amd64-netinst.iso", State.DOWNLOADING, size,
        sum(end - start for start, end in done_ranges),
        speed=12.4 * MiB, eta=42.0, connections=connections, done_ranges=done_ranges,
        etag='"4b8a1f-63f0c2a7e1b40"', last_modified="Sat, 06 Sep 2025 10:21:07 GMT",
        final_url="https://cdn-fra.mirror.example.org/pub/debian-13.1.0-amd64-netinst.iso",
        checksums=(ChecksumInfo("sha256", "0a6a2e7d9c1f" + "5e" * 26, "you"),),
        speed_history=tuple(float((8 + (i * 7) % 5) * MiB) for i in range(90)),
        retries=1,
        errors=(ErrorRecord(T0 + 95, "connection 3: read timed out after 30 s; retrying"),),
        options={"netrc": True, "connections": 8,
                 "checksum": "sha256:0a6a2e7d9c1f" + "5e" * 26},
    )


def busy_upload() -> DownloadInfo:
    """A checkpoint going to S3 in 8 MiB parts over four connections: parts 1-40, 43 and 45
    acknowledged, four being read and sent."""
    part, count = 8 * MiB, 96
    acknowledged = [*range(40), 42, 44]
    flying = (40, 41, 43, 45)
    connections = tuple(
        ConnectionInfo(number=n, start=p * part, end=(p + 1) * part,
                       position=p * part + part * (3 + 2 * n) // 10,
                       bytes=part * (3 + 2 * n) // 10, speed=11.5 * MiB + n * 262144,
                       retries=1 if n == 2 else 0, last_status="sending")
        for n, p in enumerate(flying))
    sent = len(acknowledged) * part
    name = "checkpoint-step-12000.safetensors"
    return _info(
        8, name, State.UPLOADING, count * part,
        sent + sum(c.position - c.start for c in connections),
        direction="upload", source="s3", url=f"s3://ml-checkpoints/runs/42/{name}",
        dest=f"/home/ada/runs/42/{name}", speed=46.0 * MiB, eta=9.0,
        done_ranges=((0, 40 * part), (42 * part, 43 * part), (44 * part, 45 * part)),
        connections=connections, options={"connections": 4},
        speed_history=tuple(float((40 + (i * 7) % 9) * MiB) for i in range(60)),
        retries=0,
        errors=(ErrorRecord(T0 + 530, "connection 2: part 44: 503 Slow Down; sending it "
                                      "again"),),
    )


def still_downloads() -> list[DownloadInfo]:
    model = 4300 * MiB
    return [
        busy_iso(),
        _info(2, "model-00001-of-00002.safetensors", State.DOWNLOADING, model, model // 3,
              source="hf", speed=31.0 * MiB, eta=93.0, connections=_connections(model, 4, 0.3),
              url="hf://acme/tiny-llm/model-00001-of-00002.safetensors"),
        _info(3, "ubuntu-24.04-desktop-amd64.iso", State.PAUSED, 5900 * MiB, 2100 * MiB,
              message="paused"),
        _info(4, "dataset-2025-q3.parquet", State.QUEUED, 850 * MiB, 0, source="s3",
              url="s3://open-data/dataset-2025-q3.parquet"),
        _info(5, "backup-2025-12-31.tar.zst", State.FAILED, 310 * MiB, 120 * MiB,
              source="ftp", url="ftp://files.example.net/backup-2025-12-31.tar.zst",
              message="550 Failed to open file: permission denied",
              errors=(ErrorRecord(T0 + 400, "550 Failed to open file: permission denied"),)),
        _info(6, "release-notes.pdf", State.DONE, 2 * MiB + 12345, 2 * MiB + 12345,
              finished=T0 + 500,
              checksums=(ChecksumInfo("md5", "9e107d9d372bb6826bd81d3542a419d6",
                                      "Content-MD5", "9e107d9d372bb6826bd81d3542a419d6",
                                      True),)),
        _info(7, "stream.log", State.DOWNLOADING, None, 18 * MiB, speed=256 * 1024.0,
              source="az", url="az://logs/stream.log"),
        busy_upload(),
    ]
