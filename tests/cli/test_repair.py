"""`laden verify` names the damaged ranges; `laden repair` fetches only those again."""

from __future__ import annotations

import json
from pathlib import Path

from engine.helpers import run_laden, sha256
from engine.test_pieces import damage, fetched_ranges, forget_pieces
from laden.engine.pieces import PIECE_SIZE
from servers.fixtures import random_bytes

SIZE = 5 * PIECE_SIZE + 777  # six pieces
PIECE = (2 * PIECE_SIZE, 3 * PIECE_SIZE)


def got(http_server, downloads: Path, name: str, data: bytes, *options: str) -> int:
    url = http_server.add_file(f"/{name}", data)
    result = run_laden("get", "-q", "-c", "4", "-o", str(downloads), *options, url)
    assert result.returncode == 0, result.stderr
    return int(json.loads(run_laden("list", "--json").stdout.splitlines()[-1])["id"])


def test_verify_names_the_range_and_repair_fetches_only_that_piece(
    http_server, downloads: Path
) -> None:
    data = random_bytes(SIZE, seed=400)
    download_id = got(http_server, downloads, "model.bin", data,
                      "--checksum", f"sha256:{sha256(data)}")
    damage(downloads / "model.bin", PIECE[0] + 123_456)

    checked = run_laden("verify", str(download_id))
    assert checked.returncode == 1
    assert f"1 of 6 pieces damaged: bytes {PIECE[0]}-{PIECE[1] - 1}" in checked.stdout
    assert f"laden repair {download_id} fetches only the damaged bytes again" in checked.stdout

    http_server.clear_log()
    repaired = run_laden("repair", str(downloads / "model.bin"))  # by path, as verify takes
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"[{download_id}] repaired:" in repaired.stdout
    assert f"fetched bytes {PIECE[0]}-{PIECE[1] - 1} (4.0 MiB) again" in repaired.stdout
    assert "sha256 matches" in repaired.stdout
    assert fetched_ranges(http_server, "/model.bin") == [f"bytes={PIECE[0]}-{PIECE[1] - 1}"]
    assert sha256(downloads / "model.bin") == sha256(data)
    assert run_laden("verify", str(download_id)).returncode == 0
    listing = json.loads(run_laden("list", "--json").stdout.splitlines()[-1])
    assert listing["state"] == "done"


def test_a_changed_remote_is_refused_with_one_line(http_server, downloads: Path) -> None:
    data = random_bytes(SIZE, seed=401)
    download_id = got(http_server, downloads, "c.bin", data)
    damage(downloads / "c.bin", PIECE[0])
    http_server.set_content("/c.bin", random_bytes(SIZE, seed=402))
    http_server.clear_log()
    refused = run_laden("repair", str(download_id))
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"[{download_id}] FAILED:")
    assert "the remote file changed" in lines[0] and "laden get --force" in lines[0]
    assert refused.stderr == ""
    assert fetched_ranges(http_server, "/c.bin") == []


def test_an_older_laden_download_says_repair_is_not_possible(
    http_server, downloads: Path, laden_dirs
) -> None:
    data = random_bytes(SIZE, seed=403)
    download_id = got(http_server, downloads, "o.bin", data)
    forget_pieces(laden_dirs["state"])
    refused = run_laden("repair", str(download_id))
    assert refused.returncode == 1
    assert "repair is not possible: it has no piece hashes" in refused.stdout
    assert "older" in refused.stdout and "Traceback" not in refused.stderr


def test_bad_input_is_one_line_and_exit_2() -> None:
    result = run_laden("repair", "42")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "42" in result.stderr
    assert run_laden("repair").returncode == 2
