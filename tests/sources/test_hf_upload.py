"""Uploads to the Hugging Face Hub (the test hub, `servers.hf_hub`): a small file committed
inline, a large one through the LFS batch API, a folder into a dataset's branch, reruns that
send nothing again, the conflict policies, a bad token, and no token anywhere it could leak."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pytest

from laden.core.config import Config
from laden.core.states import State
from servers.cloud_fixtures import unique_name
from servers.fixtures import random_bytes
from servers.hf_hub import HubServer, git_blob_sha1

from .conftest import journal_records, laden, laden_process, manager

LFS_SIZE = 300_000  # the test hub's repos keep files of 1024 bytes and more in LFS


def _options(hub: HubServer) -> dict[str, Any]:
    return {"source_settings": {"hf_endpoint": hub.endpoint},
            "secrets": {"hf_token": hub.token}}


def _flags(hub: HubServer, token_file: Path) -> list[str]:
    token_file.write_text(hub.token + "\n")
    return ["--hf-endpoint", hub.endpoint, "--hf-token-file", str(token_file)]


def _repo(hub: HubServer, repo_type: str = "model", files: dict[str, bytes] | None = None
          ) -> str:
    repo = f"someone/{unique_name('up')}"
    hub.add_repo(repo, files or {"README.md": b"# a repo\n"}, repo_type=repo_type)
    return repo


def _on_hub(hub: HubServer, repo: str, path: str, *, repo_type: str = "model",
            branch: str = "main") -> Any:
    found = hub.repos[(repo_type, repo)]
    return found.commits[found.refs[branch]].get(path)


def _puts(hub: HubServer) -> list[Any]:
    """The object PUTs the hub's storage received."""
    return [r for r in hub.cdn_requests if r.method == "PUT"]


def test_a_small_file_is_committed_inline(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "config.json"
    path.write_bytes(b'{"hidden_size": 8}\n')
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"hf://{repo}/config.json", **_options(hf_hub)))
    assert info.state is State.DONE, info.message
    stored = _on_hub(hf_hub, repo, "config.json")
    assert stored.data == path.read_bytes() and not stored.lfs
    assert _puts(hf_hub) == []  # inline in the commit, not through the LFS storage
    assert [(c.algorithm, c.verified) for c in info.checksums] == [("git-sha1", True)]
    assert info.checksums[0].expected == git_blob_sha1(path.read_bytes())
    assert hf_hub.commit_messages[-1] == "Upload config.json with laden"


def test_a_large_file_goes_through_lfs_and_its_sha256_is_compared(hf_hub: HubServer,
                                                                   tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    data = random_bytes(LFS_SIZE, seed=1)
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"hf://{repo}/weights/model.bin",
                                   **_options(hf_hub)))
    assert info.state is State.DONE, info.message
    stored = _on_hub(hf_hub, repo, "weights/model.bin")
    assert stored.lfs and stored.data == data
    puts = _puts(hf_hub)
    assert len(puts) == 1 and "authorization" not in puts[0].headers  # storage never sees it
    # The LFS oid is the SHA-256 laden declared: the hub holds that object, and no one
    # hashed its bytes again, so it is laden's and not "verified".
    assert [(c.algorithm, c.expected, c.origin, c.verified) for c in info.checksums] == [
        ("sha256", hashlib.sha256(data).hexdigest(), "laden", None)]
    assert info.done == info.size == LFS_SIZE
    with manager() as m:
        checked = m.verify(info.id)  # the local file against the hub's sha256, again
    assert checked.ok and checked.algorithm == "sha256", checked.message


def test_a_large_file_in_parts_when_the_hub_asks_for_multipart(hf_hub: HubServer,
                                                                tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    data = random_bytes(LFS_SIZE, seed=2)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    hf_hub.multipart_chunk = 100_000
    try:
        with manager() as m:
            info = m.wait(m.add_upload(str(path), f"hf://{repo}/big.bin", **_options(hf_hub)))
    finally:
        hf_hub.multipart_chunk = None
    assert info.state is State.DONE, info.message
    assert _on_hub(hf_hub, repo, "big.bin").data == data
    assert len(_puts(hf_hub)) == 3


def test_a_folder_with_a_glob_into_a_dataset_branch_then_a_rerun_sends_nothing(
        hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub, "dataset")
    sha = hf_hub.repos[("dataset", repo)].refs["main"]
    hf_hub.add_ref(repo, "v2", sha, repo_type="dataset")
    folder = tmp_path / "data"
    wanted = {"train/a.parquet": LFS_SIZE, "train/b.parquet": 2000, "test/c.parquet": 500}
    for number, (name, size) in enumerate({**wanted, "notes.txt": 50}.items()):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        data = random_bytes(size, seed=10 + number)
        # A small file without a NUL byte is text to the hub: kept by git, inside the commit.
        (folder / name).write_bytes(data.hex().encode()[:size] if size < 1024 else data)
    flags = _flags(hf_hub, tmp_path / "token")
    argv = ["put", *flags, "--glob", "**/*.parquet", "-m", "Add the parquet files",
            str(folder), f"hf://datasets/{repo}@v2/data/"]
    result = laden(*argv)
    assert result.returncode == 0, result.stderr
    for name in wanted:
        stored = _on_hub(hf_hub, repo, f"data/{name}", repo_type="dataset", branch="v2")
        assert stored is not None and stored.data == (folder / name).read_bytes()
    assert _on_hub(hf_hub, repo, "data/notes.txt", repo_type="dataset", branch="v2") is None
    assert _on_hub(hf_hub, repo, "data/train/a.parquet", repo_type="dataset") is None  # main
    assert hf_hub.commit_messages[-3:] == ["Add the parquet files"] * 3
    assert len(_puts(hf_hub)) == 2  # the two LFS files; the small one went inline

    hf_hub.cdn_requests.clear()
    head = hf_hub.repos[("dataset", repo)].refs["v2"]
    again = laden(*argv)
    assert again.returncode == 0, again.stderr
    assert _puts(hf_hub) == []  # the hub holds every object already
    assert hf_hub.repos[("dataset", repo)].refs["v2"] == head  # and no empty commit was made


def test_a_branch_with_a_slash_in_its_name(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    hf_hub.add_ref(repo, "feature/x", hf_hub.repos[("model", repo)].refs["main"])
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"a\n")
    result = laden("put", *_flags(hf_hub, tmp_path / "token"), str(folder),
                   f"hf://{repo}@feature%2Fx/out/")
    assert result.returncode == 0, result.stderr
    assert _on_hub(hf_hub, repo, "out/a.txt", branch="feature/x").data == b"a\n"


def test_a_rerun_of_a_large_file_under_another_name_sends_no_bytes(hf_hub: HubServer,
                                                                   tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "w.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=3))
    with manager() as m:
        first = m.wait(m.add_upload(str(path), f"hf://{repo}/w.bin", **_options(hf_hub)))
        hf_hub.cdn_requests.clear()
        second = m.wait(m.add_upload(str(path), f"hf://{repo}/copy/w.bin", **_options(hf_hub)))
    assert first.state is State.DONE and second.state is State.DONE, second.message
    assert _puts(hf_hub) == []  # the LFS batch answer said the object is there
    assert _on_hub(hf_hub, repo, "copy/w.bin").data == path.read_bytes()


def test_progress_is_told_in_bytes_and_a_pause_mid_file_resumes(hf_hub: HubServer,
                                                                 tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    data = random_bytes(LFS_SIZE, seed=8)
    path = tmp_path / "slow.bin"
    path.write_bytes(data)
    told: list[int] = []
    with manager() as m:
        m.subscribe(lambda e: told.append(e.tick.done) if hasattr(e, "tick") else None)
        upload = m.add_upload(str(path), f"hf://{repo}/slow.bin", limit_rate=100_000,
                              **_options(hf_hub))
        deadline = time.monotonic() + 30
        while m.get(upload).done < 50_000:
            assert time.monotonic() < deadline and not m.get(upload).state.is_finished
            time.sleep(0.02)
        m.pause(upload)
        paused = m.get(upload)
        assert paused.state is State.PAUSED
        assert _on_hub(hf_hub, repo, "slow.bin") is None  # nothing committed
        m.resume(upload)
        info = m.wait(upload, timeout=60)
    assert info.state is State.DONE, info.message
    assert _on_hub(hf_hub, repo, "slow.bin").data == data
    assert any(0 < done < LFS_SIZE for done in told)  # told as the bytes went, not at the end
    assert len(_puts(hf_hub)) == 2  # the paused PUT, then the whole object again


def test_a_file_changed_before_the_commit_commits_nothing(hf_hub: HubServer,
                                                          tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "moving.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=9))
    with manager() as m:
        upload = m.add_upload(str(path), f"hf://{repo}/moving.bin", limit_rate=100_000,
                              **_options(hf_hub))
        deadline = time.monotonic() + 30
        while m.get(upload).done < 50_000:
            assert time.monotonic() < deadline and not m.get(upload).state.is_finished
            time.sleep(0.02)
        with path.open("r+b") as f:
            f.write(b"changed")
        info = m.wait(upload, timeout=60)
    assert info.state is State.FAILED
    assert "changed during the upload; nothing was committed" in (info.message or "")
    assert _on_hub(hf_hub, repo, "moving.bin") is None


def test_killed_mid_transfer_the_next_session_finishes_it(hf_hub: HubServer, tmp_path: Path,
                                                          laden_dirs: dict[str, Path]) -> None:
    import signal

    repo = _repo(hf_hub)
    data = random_bytes(1_000_000, seed=11)
    path = tmp_path / "killed.bin"
    path.write_bytes(data)
    process = laden_process("put", "--limit-rate", "200K", *_flags(hf_hub, tmp_path / "token"),
                            "-m", "Weights, sent twice", str(path), f"hf://{repo}/killed.bin")
    try:
        deadline = time.monotonic() + 30
        while not any(r.path.endswith("/objects/batch") for r in hf_hub.hub_requests):
            assert time.monotonic() < deadline, "the LFS batch API was never asked"
            time.sleep(0.05)
        time.sleep(1.0)  # into the PUT that follows it, of 5 s
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert _on_hub(hf_hub, repo, "killed.bin") is None
    resumed = laden("resume", "--all")  # the endpoint and the token file were kept
    assert resumed.returncode == 0, resumed.stderr
    assert _on_hub(hf_hub, repo, "killed.bin").data == data
    assert len(_puts(hf_hub)) == 2  # the killed PUT (the hub kept nothing of it), then whole
    assert hf_hub.commit_messages[-1] == "Weights, sent twice"  # journalled with the upload


def test_a_commit_whose_answer_was_lost_is_not_made_twice(hf_hub: HubServer,
                                                          tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "once.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=12))
    before = len(hf_hub.repos[("model", repo)].commits)
    hf_hub.lose_commit_answers = 1
    try:
        with manager() as m:
            info = m.wait(m.add_upload(str(path), f"hf://{repo}/once.bin", **_options(hf_hub)))
    finally:
        hf_hub.lose_commit_answers = 0
    assert info.state is State.DONE, info.message
    assert info.message == "committed (the service's answer to the commit was lost)"
    assert [(c.algorithm, c.verified) for c in info.checksums] == [("sha256", None)]
    assert len(hf_hub.repos[("model", repo)].commits) == before + 1
    assert _on_hub(hf_hub, repo, "once.bin").data == path.read_bytes()


def test_a_commit_made_before_laden_stopped_is_found_in_the_next_session(
        hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "once.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=13))
    hf_hub.lose_commit_answers = 1
    try:
        with manager(Config(retries=0)) as m:  # no retry: the session ends on the lost answer
            upload = m.add_upload(str(path), f"hf://{repo}/once.bin", **_options(hf_hub))
            assert m.wait(upload).state is State.FAILED
    finally:
        hf_hub.lose_commit_answers = 0
    commits = len(hf_hub.repos[("model", repo)].commits)
    with manager() as m:
        m.resume(upload)
        info = m.wait(upload, timeout=30)
    assert info.state is State.DONE, info.message
    assert info.message == "it was committed before laden stopped"
    assert len(hf_hub.repos[("model", repo)].commits) == commits  # no second commit


# -- conflicts -------------------------------------------------------------------------------

def test_conflict_skip_keeps_a_file_with_the_same_sha256(hf_hub: HubServer,
                                                        tmp_path: Path) -> None:
    data = random_bytes(LFS_SIZE, seed=4)
    repo = _repo(hf_hub, files={"same.bin": data, "other.bin": data})
    same, other = tmp_path / "same.bin", tmp_path / "other.bin"
    same.write_bytes(data)
    other.write_bytes(random_bytes(LFS_SIZE, seed=5))
    head = hf_hub.repos[("model", repo)].refs["main"]
    with manager() as m:
        kept = m.wait(m.add_upload(str(same), f"hf://{repo}/same.bin", conflict="skip",
                                   **_options(hf_hub)))
        assert hf_hub.repos[("model", repo)].refs["main"] == head
        replaced = m.wait(m.add_upload(str(other), f"hf://{repo}/other.bin", conflict="skip",
                                       **_options(hf_hub)))
    assert kept.state is State.DONE and kept.skipped, kept.message
    assert replaced.state is State.DONE and not replaced.skipped, replaced.message
    assert _on_hub(hf_hub, repo, "other.bin").data == other.read_bytes()


def test_conflict_skip_compares_a_small_files_git_blob_id(hf_hub: HubServer,
                                                         tmp_path: Path) -> None:
    repo = _repo(hf_hub, files={"a.txt": b"hello\n"})
    path = tmp_path / "a.txt"
    path.write_bytes(b"hello\n")
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"hf://{repo}/a.txt", conflict="skip",
                                   **_options(hf_hub)))
    assert info.state is State.DONE and info.skipped, info.message


def test_conflict_fail_refuses_a_taken_path(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub, files={"taken.bin": b"theirs"})
    path = tmp_path / "mine.bin"
    path.write_bytes(b"mine")
    result = laden("put", "--conflict", "fail", *_flags(hf_hub, tmp_path / "token"),
                   str(path), f"hf://{repo}/taken.bin")
    assert result.returncode != 0
    assert "exists already, and the conflict policy is fail" in result.stderr
    assert "Traceback" not in result.stderr
    assert _on_hub(hf_hub, repo, "taken.bin").data == b"theirs"


def test_conflict_fail_commits_on_the_commit_it_checked(hf_hub: HubServer,
                                                        tmp_path: Path) -> None:
    """A commit that lands between laden's look and its commit makes the hub refuse laden's
    (parentCommit): laden looks again, finds the path taken, and fails without replacing."""
    repo = _repo(hf_hub)
    path = tmp_path / "f.txt"
    path.write_bytes(b"mine\n")
    original = hf_hub._commit_ndjson

    def someone_else_first(req: Any, found: Any, revision: str) -> None:
        if not hf_hub.repos[("model", repo)].commits[found.refs[revision]].get("f.txt"):
            hf_hub.set_file(repo, "f.txt", b"theirs\n")
        original(req, found, revision)

    hf_hub._commit_ndjson = someone_else_first  # type: ignore[method-assign]
    try:
        with manager() as m:
            info = m.wait(m.add_upload(str(path), f"hf://{repo}/f.txt", conflict="fail",
                                       **_options(hf_hub)))
    finally:
        del hf_hub._commit_ndjson
    assert info.state is State.FAILED
    assert "exists already, and the conflict policy is fail" in (info.message or "")
    assert _on_hub(hf_hub, repo, "f.txt").data == b"theirs\n"


def test_conflict_fail_commits_a_free_path(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "new.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=6))
    with manager() as m:
        info = m.wait(m.add_upload(str(path), f"hf://{repo}/new.bin", conflict="fail",
                                   **_options(hf_hub)))
    assert info.state is State.DONE, info.message
    assert _on_hub(hf_hub, repo, "new.bin").data == path.read_bytes()


# -- errors and secrets ----------------------------------------------------------------------

def test_a_bad_token_is_one_clear_line(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "f.txt"
    path.write_bytes(b"x\n")
    token = tmp_path / "token"
    token.write_text("hf_not_the_right_token_at_all\n")
    result = laden("put", "--hf-endpoint", hf_hub.endpoint, "--hf-token-file", str(token),
                   str(path), f"hf://{repo}/f.txt")
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.startswith("laden:")]
    assert len(lines) == 1, result.stderr
    assert "token" in lines[0] and "Traceback" not in result.stderr
    assert _on_hub(hf_hub, repo, "f.txt") is None


def test_no_token_at_all_says_one_is_needed(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "f.txt"
    path.write_bytes(b"x\n")
    result = laden("put", "--hf-endpoint", hf_hub.endpoint, str(path), f"hf://{repo}/f.txt")
    assert result.returncode != 0
    assert "needs a Hugging Face token" in result.stderr and "Traceback" not in result.stderr


def test_a_missing_branch_is_one_clear_line(hf_hub: HubServer, tmp_path: Path) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "f.txt"
    path.write_bytes(b"x\n")
    result = laden("put", *_flags(hf_hub, tmp_path / "token"), str(path),
                   f"hf://{repo}@nope/f.txt")
    assert result.returncode != 0
    assert "has no revision 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_the_token_never_reaches_output_json_log_or_journal(
        hf_hub: HubServer, tmp_path: Path, laden_dirs: dict[str, Path]) -> None:
    repo = _repo(hf_hub)
    path = tmp_path / "w.bin"
    path.write_bytes(random_bytes(LFS_SIZE, seed=7))
    result = laden("--log-level", "debug", "put", "--json", *_flags(hf_hub, tmp_path / "tok"),
                   str(path), f"hf://{repo}/w.bin")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[-1]["event"] == "completed" and events[-1]["direction"] == "upload"
    listed = laden("list", "--json").stdout + laden("list").stdout
    seen = [result.stdout, result.stderr, listed]
    seen += [p.read_text(errors="replace") for p in laden_dirs["logs"].rglob("*") if p.is_file()]
    seen += [p.read_bytes().decode("latin-1") for p in laden_dirs["state"].rglob("*")
             if p.is_file()]
    assert "preupload" in "".join(seen)  # the log was written, at debug
    for text in seen:
        assert hf_hub.token not in text and "Signature=" not in text
    record = journal_records(laden_dirs["state"])[0]
    assert record.upload["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("address", ["hf://someone", "hf://someone/repo/"])
def test_an_address_without_a_file_is_refused(hf_hub: HubServer, tmp_path: Path,
                                              address: str) -> None:
    path = tmp_path / "f.txt"
    path.write_bytes(b"x\n")
    result = laden("put", *_flags(hf_hub, tmp_path / "token"), str(path), address)
    assert result.returncode != 0 and "Traceback" not in result.stderr
