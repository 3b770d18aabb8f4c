"""The pieces under the engine: segment planning, names, checksums, journal, settings."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from laden.core.checksums import parse_checksum
from laden.core.config import Config
from laden.core.errors import InputError, SettingsError
from laden.core.names import (
    filename_from_content_disposition,
    free_name,
    sanitize_filename,
)
from laden.engine import partfile
from laden.engine.segments import SegmentPlan, merge_ranges
from laden.store import settings as settings_file
from laden.store.journal import Journal, Record


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(min_value=1, max_value=50_000_000),
    connections=st.integers(min_value=1, max_value=32),
    done=st.lists(st.tuples(st.integers(0, 50_000_000), st.integers(0, 5_000_000)), max_size=5),
    steps=st.lists(st.tuples(st.integers(0, 40), st.integers(1, 3_000_000)), max_size=60),
    min_size=st.sampled_from([1, 4096, 65536, 1 << 20]),
    boundary=st.sampled_from([None, 1 << 20, 4 << 20]),
)
def test_segments_always_tile_the_file(size, connections, done, steps, min_size,
                                       boundary) -> None:
    ranges = [(start, min(size, start + length)) for start, length in done if start < size]
    plan = SegmentPlan(size, ranges, min_size=min_size, boundary=boundary)
    plan.split_for(connections)
    plan.check()
    held = {}
    for worker, amount in steps:
        segment = held.get(worker)
        if segment is None or segment.finished:
            segment = plan.take(worker)
            if segment is None:
                continue
            held[worker] = segment
        n = plan.reserve(segment, amount)
        plan.advance(segment, n)
        if amount % 7 == 0:  # now and then a connection fails and gives its segment back
            plan.release(segment)
            held.pop(worker)
        plan.check()
    while True:  # finish the rest with one connection: everything must be reachable
        segment = plan.take(999)
        if segment is None:
            break
        plan.advance(segment, plan.reserve(segment, segment.remaining))
    for segment in held.values():
        if not segment.finished:
            plan.advance(segment, plan.reserve(segment, segment.remaining))
    plan.check()
    assert plan.finished and plan.done_ranges() == [(0, size)]


def test_a_free_connection_takes_the_far_half_of_the_largest_range() -> None:
    plan = SegmentPlan(10 << 20, min_size=1 << 20)
    plan.split_for(2)
    first, second = plan.take(0), plan.take(1)
    assert (first.start, second.start) == (0, 5 << 20)
    plan.advance(second, plan.reserve(second, second.remaining))
    third = plan.take(1)
    assert third.start == (5 << 20) // 2 and first.end == third.start
    plan.check()


def test_cuts_fall_on_piece_boundaries_where_one_is_near() -> None:
    """So each piece is hashed by the one connection that writes it (`pieces`)."""
    MiB = 1 << 20
    plan = SegmentPlan(200 * MiB, min_size=MiB, boundary=4 * MiB)
    plan.split_for(16)  # 12.5 MiB each, unsnapped
    segments = [plan.take(n) for n in range(16)]
    assert all(s.start % (4 * MiB) == 0 for s in segments)
    assert {s.end - s.start for s in segments} <= {12 * MiB, 16 * MiB}
    first = segments[0]  # a connection that finished takes from the largest range left
    plan.advance(first, plan.reserve(first, first.remaining))
    stolen = plan.take(0)
    assert stolen.start % (4 * MiB) == 0
    # With less than a piece left, the far half is cut wherever it falls.
    plan = SegmentPlan(8 * MiB, [(0, 5 * MiB)], min_size=MiB // 2, boundary=4 * MiB)
    one = plan.take(0)
    assert (one.start, one.end) == (5 * MiB, 8 * MiB)
    assert plan.take(1).start == 5 * MiB + 3 * MiB // 2


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 64 << 20), done=st.integers(0, 16 << 20),
       connections=st.integers(1, 32), in_order=st.booleans(),
       steals=st.lists(st.integers(0, 8 << 20), max_size=6))
def test_snapped_cuts_keep_min_size(size, done, connections, in_order, steals) -> None:
    """Snapping to a boundary never makes a segment or a stolen piece smaller than
    `min_size`, beyond what the unsnapped plan would."""
    MiB = 1 << 20
    plan = SegmentPlan(size, [(0, min(done, size))], min_size=MiB, boundary=4 * MiB)
    plain = SegmentPlan(size, [(0, min(done, size))], min_size=MiB)
    for p in (plan, plain):
        p.split_for(connections, in_order=4 * MiB if in_order else None)
    smallest = min((end - start for start, end in plain.waiting()), default=0)
    assert all(end - start >= min(MiB, smallest) for start, end in plan.waiting())
    taken = [plan.take(n) for n in range(len(plan.waiting()))]  # from now on, takes split
    for n, written in enumerate(steals):
        segment = taken[n % len(taken)] if taken else None
        if segment is not None:
            plan.advance(segment, plan.reserve(segment, written))
        stolen = plan.take(100 + n)
        if stolen is not None:
            assert stolen.end - stolen.start >= MiB
    plan.check()


def test_split_never_cuts_below_a_read_in_flight() -> None:
    plan = SegmentPlan(8 << 20, min_size=1 << 20)
    segment = plan.take(0)
    plan.reserve(segment, 7 << 20)  # a huge read is in flight
    piece = plan.take(1)
    assert piece is None or piece.start >= 7 << 20


def test_merge_ranges() -> None:
    assert merge_ranges([(5, 9), (0, 3), (3, 5), (10, 10), (8, 12)]) == [(0, 12)]


@pytest.mark.parametrize(("header", "name"), [
    ('attachment; filename="a.txt"', "a.txt"),
    ("attachment; filename*=UTF-8''%E2%82%AC%20rates.pdf", "€ rates.pdf"),
    ('attachment; filename="/etc/passwd"', "passwd"),
    ('attachment; filename="..\\\\..\\\\boot.ini"', "boot.ini"),
    ('attachment; filename=".."', None),
    ('attachment; filename="a\x00b.txt"', "ab.txt"),
    ("attachment", None),
    ("", None),
])
def test_content_disposition(header: str, name: str | None) -> None:
    assert filename_from_content_disposition(header) == name


@given(st.text())
def test_content_disposition_never_crashes_or_escapes(header: str) -> None:
    name = filename_from_content_disposition("attachment; filename*=UTF-8''" + header)
    for candidate in (name, filename_from_content_disposition(header)):
        if candidate is not None:
            assert "/" not in candidate and "\x00" not in candidate
            assert candidate not in (".", "..")
            assert len(candidate.encode()) <= 255


def test_sanitize_long_and_windows_names() -> None:
    long = "x" * 400 + ".tar.gz"
    assert len(sanitize_filename(long).encode()) <= 255
    assert sanitize_filename(long).endswith(".gz")
    assert sanitize_filename("CON.txt", windows=True) == "_CON.txt"
    assert sanitize_filename("a:b?.txt", windows=True) == "a_b_.txt"


def test_free_name(tmp_path: Path) -> None:
    (tmp_path / "a.tar.gz").write_text("")
    (tmp_path / "a.1.tar.gz.laden-part").write_text("")
    assert free_name(str(tmp_path / "a.tar.gz")) == str(tmp_path / "a.2.tar.gz")


@pytest.mark.parametrize(("text", "expected"), [
    ("sha256:" + "AB" * 32, ("sha256", "ab" * 32)),
    ("SHA-256=" + "q83vEjRWeJA=" * 0 + "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
     ("sha256", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")),
    ("md5:d41d8cd98f00b204e9800998ecf8427e", ("md5", "d41d8cd98f00b204e9800998ecf8427e")),
])
def test_parse_checksum(text: str, expected: tuple[str, str]) -> None:
    assert parse_checksum(text) == expected


@pytest.mark.parametrize("text", ["sha256", "sha256:", "sha256:zz", "crc99:00", ":abc"])
def test_parse_checksum_rejects(text: str) -> None:
    with pytest.raises(InputError):
        parse_checksum(text)


def test_broken_journal_is_moved_aside(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    journal.insert(Record(url="http://x/y", source="http", dest_dir="/tmp", state="queued"))
    journal.close()
    path = tmp_path / "journal.sqlite3"
    for suffix in ("-wal", "-shm"):
        if os.path.exists(str(path) + suffix):
            os.unlink(str(path) + suffix)
    path.write_bytes(path.read_bytes()[:300] + bytes(random.Random(1).randbytes(2000)))
    recovered = Journal(str(tmp_path))
    assert recovered.recovered_from and os.path.exists(recovered.recovered_from)
    assert recovered.load_all() == []
    recovered.close()
    path.write_bytes(b"garbage" * 100)
    again = Journal(str(tmp_path))
    assert again.recovered_from and again.load_all() == []


def test_settings_round_trip_and_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "config.toml")
    assert settings_file.load(path) == Config()
    config = Config(connections=16, limit_rate=5 << 20, extra={"theme": "nord",
                                                               "keymap": {"add": "n"}})
    settings_file.save(config, path)
    loaded = settings_file.load(path)
    assert loaded.connections == 16 and loaded.limit_rate == 5 << 20
    assert loaded.extra == {"theme": "nord", "keymap": {"add": "n"}}
    Path(path).write_text('limit_rate = "5M"\nconflict = "merge"\n')
    with pytest.raises(SettingsError, match=r"config.toml, line 2: conflict must be one of"):
        settings_file.load(path)


def test_an_unknown_setting_names_its_line_and_the_closest_one(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('connections = 4\nconectionz = 4\n')
    with pytest.raises(SettingsError, match=r"config.toml, line 2: conectionz: unknown setting, "
                                            r"did you mean connections\?"):
        settings_file.load(str(path))
    # The app's keys and the sources' keys are known, not unknown.
    path.write_text('theme = "nord"\ns3_endpoint_url = "http://127.0.0.1:9"\n'
                    'hf_token_file = "/run/hf"\n[keymap]\nadd = "n"\n')
    assert settings_file.load(str(path)).extra["keymap"] == {"add": "n"}


def test_every_cloud_option_can_be_a_setting() -> None:
    from laden.cli.parser import CLOUD_OPTIONS, SECRET_CLOUD_OPTIONS
    from laden.core.config import EXTRA_SETTINGS

    names = {flag[2:].replace("-", "_") for flag, _, _ in CLOUD_OPTIONS}
    assert names - SECRET_CLOUD_OPTIONS <= EXTRA_SETTINGS


def test_saving_keeps_sizes_as_the_user_wrote_them(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('limit_rate = "50M"\nmin_segment_size = "1.5M"\nconnections = 4\n')
    config = settings_file.load(str(path))
    assert config.limit_rate == 50 << 20
    settings_file.save(config.replace(connections=6), str(path))
    text = path.read_text()
    assert 'limit_rate = "50M"' in text and 'min_segment_size = "1.5M"' in text
    assert "connections = 6" in text and "52428800" not in text
    settings_file.save(config.replace(limit_rate=8 << 20, buffer_size=1_000_000), str(path))
    text = path.read_text()
    assert 'limit_rate = "8M"' in text, "a changed size is written the way people write sizes"
    assert "buffer_size = 1000000" in text  # no exact K, M or G: the number itself
    assert settings_file.load(str(path)).limit_rate == 8 << 20


def test_the_python_api_reads_the_settings_file_when_asked(
        laden_dirs: dict[str, Path]) -> None:
    from laden import DownloadManager

    (laden_dirs["config"] / "config.toml").write_text('connections = 3\nlimit_rate = "2M"\n')
    with DownloadManager.from_settings() as manager:
        assert (manager.config.connections, manager.config.limit_rate) == (3, 2 << 20)
        assert manager.bandwidth.rate == 2 << 20
    with DownloadManager() as manager:  # documented: the defaults, not the file
        assert manager.config.connections == Config().connections


@pytest.fixture(params=["renameat2", "hard link"])
def final_move(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a finished file takes its name: renameat2(RENAME_NOREPLACE), and the hard
    link and unlink used where that system call is missing."""
    if request.param == "hard link":
        at_call = partfile.at_call
        monkeypatch.setattr(partfile, "at_call",
                            lambda name: None if name == "renameat2" else at_call(name))
    return str(request.param)


def test_the_final_move_never_replaces_a_file(tmp_path: Path, final_move: str) -> None:
    part, dest = tmp_path / "a.bin.laden-part", tmp_path / "a.bin"
    part.write_bytes(b"new")
    dest.write_bytes(b"yours")
    with pytest.raises(FileExistsError):
        partfile.finish(str(part), str(dest), overwrite=False)
    assert dest.read_bytes() == b"yours" and part.read_bytes() == b"new"
    partfile.finish(str(part), str(tmp_path / "b.bin"), overwrite=False)
    assert (tmp_path / "b.bin").read_bytes() == b"new" and not part.exists()


def test_the_final_move_finishes_a_link_left_by_a_crash(tmp_path: Path, final_move: str) -> None:
    part, dest = tmp_path / "a.bin.laden-part", tmp_path / "a.bin"
    part.write_bytes(b"data")
    os.link(part, dest)  # laden was stopped between the link and the unlink
    partfile.finish(str(part), str(dest), overwrite=False)
    assert dest.read_bytes() == b"data" and not part.exists()


def test_a_download_folder_under_home_is_expanded(http_server, tmp_path, monkeypatch) -> None:
    """`download_dir = "~/Downloads"`, as the README shows it, is the home's Downloads (not a
    folder called `~` in the working folder)."""
    from laden.core.config import Config
    from laden.engine.manager import DownloadManager

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    config = Config.from_mapping({"download_dir": "~/Downloads"})
    url = http_server.add_file("/home.bin", b"h" * 1000)
    with DownloadManager(config) as m:
        info = m.wait(m.add(url), timeout=30)
    assert info.dest == str(tmp_path / "Downloads" / "home.bin")
    assert (tmp_path / "Downloads" / "home.bin").read_bytes() == b"h" * 1000
    assert not (tmp_path / "~").exists()
    assert config.to_mapping()["download_dir"] == "~/Downloads"  # saved as written


def test_whole_pieces_are_never_split_and_start_again_when_interrupted() -> None:
    from laden.engine.segments import SegmentPlan

    plan = SegmentPlan(25, [(0, 10)], min_size=5, piece_size=5)
    first = plan.take(0)
    assert first is not None and (first.start, first.end) == (10, 15)
    plan.reserve(first, 3)
    plan.advance(first, 3)
    plan.interrupted(first)  # a part that failed halfway is sent again from its start
    assert first.position == 10 and plan.done_bytes() == 10
    taken = [plan.take(n) for n in (1, 2, 3)]
    assert [(s.start, s.end) for s in taken if s] == [(15, 20), (20, 25)]
    assert taken[2] is None  # nothing left to take, and nothing is split
    plan.advance(taken[0], 2)
    plan.release(taken[0])
    assert taken[0].position == 15
    plan.check()
