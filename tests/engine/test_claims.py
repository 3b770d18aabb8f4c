"""Names held by unfinished downloads: two downloads never end up with one file name."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from laden.core.names import free_name
from laden.core.options import DownloadOptions
from laden.core.states import State
from laden.engine.claims import Claims
from laden.engine.download import Download
from laden.store.journal import Record


def _download(downloads: dict[int, Download], number: int, folder: Path,
              dest: str | None = None) -> Download:
    record = Record(url=f"http://example.test/{number}/data.bin", source="http",
                    dest_dir=str(folder), state=State.QUEUED.value, dest=dest, id=number)
    download = downloads[number] = Download(record, DownloadOptions())
    return download


def _choose(claims: Claims, download: Download, path: str, pause: float = 0.0) -> None:
    with claims.choosing(download) as taken:
        name = free_name(path, taken)
        time.sleep(pause)  # the gap between finding a name and taking it
        download.record.dest = name


def test_downloads_choosing_one_name_at_once_each_get_their_own(tmp_path: Path) -> None:
    downloads: dict[int, Download] = {}
    claims = Claims(downloads)
    racers = [_download(downloads, n, tmp_path) for n in range(12)]
    path = str(tmp_path / "data.bin")
    gate = threading.Barrier(len(racers))

    def race(download: Download) -> None:
        gate.wait()
        _choose(claims, download, path, pause=0.002)

    threads = [threading.Thread(target=race, args=(d,)) for d in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    names = sorted(str(d.record.dest) for d in racers)
    assert len(set(names)) == 12
    assert str(tmp_path / "data.bin") in names and str(tmp_path / "data.11.bin") in names


def test_a_name_is_free_again_once_its_holder_finished_moved_or_went(tmp_path: Path) -> None:
    downloads: dict[int, Download] = {}
    claims = Claims(downloads)
    path = str(tmp_path / "data.bin")
    holder = _download(downloads, 1, tmp_path)
    _choose(claims, holder, path)
    newcomer = _download(downloads, 2, tmp_path)
    with claims.choosing(newcomer) as taken:
        assert path in taken
    holder.state = State.DONE  # finished: the file on disk is what keeps the name now
    with claims.choosing(newcomer) as taken:
        assert path not in taken
    holder.state = State.QUEUED  # queued again (fetch it anew): it holds its name again
    holder.record.dest = str(tmp_path / "elsewhere.bin")  # renamed when its file appeared
    with claims.choosing(newcomer) as taken:
        assert path not in taken
    holder.record.dest = path
    del downloads[1]  # removed
    with claims.choosing(newcomer) as taken:
        assert path not in taken


def test_names_from_the_journal_are_held_and_a_download_never_blocks_itself(
    tmp_path: Path,
) -> None:
    downloads: dict[int, Download] = {}
    claims = Claims(downloads)
    path = str(tmp_path / "data.bin")
    loaded = _download(downloads, 1, tmp_path, dest=path)
    claims.note(loaded)  # as `DownloadManager._keep` does for every download it is given
    with claims.choosing(_download(downloads, 2, tmp_path)) as taken:
        assert path in taken
    with claims.choosing(loaded) as taken:
        assert path not in taken


def test_a_name_given_before_the_block_raised_is_still_held(tmp_path: Path) -> None:
    downloads: dict[int, Download] = {}
    claims = Claims(downloads)
    path = str(tmp_path / "data.bin")
    skipped = _download(downloads, 1, tmp_path)
    try:
        with claims.choosing(skipped):
            skipped.record.dest = path
            raise RuntimeError("skip")  # as conflict = skip does, after naming the download
    except RuntimeError:
        pass
    with claims.choosing(_download(downloads, 2, tmp_path)) as taken:
        assert path in taken
