"""Model-file checks: each kind's valid file passes; cut short or damaged, it is refused with
what is wrong, in one line, and never with a traceback; a download of a damaged one fails
before it takes its final name."""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from laden.core.errors import PERMANENT_EXIT, exit_code_of
from laden.engine import events
from laden.engine.formats import check_file, kind_of

from . import model_files as mf
from .helpers import FAST, manager, part_files, run_laden


def check(tmp_path: Path, name: str, data: bytes):  # noqa: ANN201 - a FormatReport or None
    path = tmp_path / name
    path.write_bytes(data)
    return check_file(path)


def refused(tmp_path: Path, name: str, data: bytes) -> str:
    report = check(tmp_path, name, data)
    assert report is not None and not report.ok, report
    assert "\n" not in report.detail
    return report.detail


# -- valid files ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(mf.VALID))
def test_a_valid_file_of_each_kind_passes(tmp_path: Path, name: str) -> None:
    report = check(tmp_path, name, mf.VALID[name]())
    assert report is not None and report.ok, report


def test_what_a_valid_file_holds_is_said(tmp_path: Path) -> None:
    assert check(tmp_path, "m.safetensors", mf.safetensors()).detail.startswith("2 tensors")
    assert check(tmp_path, "m.gguf", mf.gguf()).detail == (
        "version 3, 2 tensors, 4 metadata entries")
    assert check(tmp_path, "m.onnx", mf.onnx()).detail == "IR version 8, 1 node, 1 initializer"
    assert check(tmp_path, "a.npz", mf.npz()).detail == "3 arrays"
    assert check(tmp_path, "a.npz", mf.npz(compressed=True)).ok
    assert check(tmp_path, "m.pt", mf.torch_zip()).kind == "PyTorch checkpoint (zip)"
    legacy = check(tmp_path, "old.pth", mf.torch_legacy())
    assert legacy.ok and legacy.kind == "PyTorch checkpoint (legacy pickle)"


def test_only_model_files_are_checked(tmp_path: Path) -> None:
    assert kind_of("notes.txt") is None and kind_of("MODEL.SafeTensors") == "safetensors"
    assert check(tmp_path, "notes.txt", b"anything") is None
    # A .bin is often no checkpoint at all (firmware, a disk image): not checked then.
    assert check(tmp_path, "firmware.bin", b"\x7fELF" + bytes(100)) is None
    assert check(tmp_path, "page.bin", b"<!DOCTYPE html><html></html>") is None


# -- cut short -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(mf.VALID))
def test_every_cut_of_every_kind_is_refused(tmp_path: Path, name: str) -> None:
    data = mf.VALID[name]()
    for cut in range(len(data)):
        report = check(tmp_path, name, data[:cut])
        if name.endswith(".bin") and cut < 4:
            assert report is None  # not even a zip's magic: no checkpoint, so not checked
            continue
        assert report is not None and not report.ok, f"{name} cut at {cut} passed: {report}"


def test_a_cut_safetensors_says_which_tensor_and_where(tmp_path: Path) -> None:
    big = mf.safetensors({"w": ("F32", [2048, 1152], bytes(9_437_184))})
    header = struct.unpack("<Q", big[:8])[0]
    assert 8 + header + 9_437_184 == len(big)
    detail = refused(tmp_path, "model.safetensors", big[:9_000_000])
    assert detail == f"tensor 'w' ends at byte {len(big):,} but the file has 9,000,000 bytes"
    assert check_file(tmp_path / "model.safetensors").message("model.safetensors") == (
        f"model.safetensors: {detail}")


def test_cut_files_name_what_is_missing(tmp_path: Path) -> None:
    gguf = mf.gguf()
    assert "tensor 'output.weight' ends at byte" in refused(tmp_path, "m.gguf", gguf[:-1])
    onnx = mf.onnx()
    assert "graph (field 7) at byte" in refused(tmp_path, "m.onnx", onnx[:30])
    assert "has no opset_import (field 8)" in refused(
        tmp_path, "m.onnx", onnx[:len(onnx) - len(mf.field(8, mf.field(1, b"") + mf.field(2, 17)))])
    for name in ("m.pt", "a.npz"):
        assert "zip central directory cannot be read" in refused(
            tmp_path, name, mf.VALID["model.pt" if name == "m.pt" else "arrays.npz"]()[:-30])
    assert "has shape (2, 3) of 4-byte items, 152 bytes" in refused(
        tmp_path, "a.npy", mf.npy()[:-1])
    assert refused(tmp_path, "m.safetensors", b"") == "the file is empty"


# -- damaged -------------------------------------------------------------------------------


def test_damaged_safetensors_headers(tmp_path: Path) -> None:
    wrong_size = mf.safetensors(header={"w": {"dtype": "F32", "shape": [3, 4],
                                              "data_offsets": [0, 40]}})
    assert "tensor 'w' is F32 [3, 4], 48 bytes, but its data_offsets span 40 bytes" in refused(
        tmp_path, "m.safetensors", wrong_size + bytes(40))
    overlap = mf.safetensors(header={
        "a": {"dtype": "U8", "shape": [8], "data_offsets": [0, 8]},
        "b": {"dtype": "U8", "shape": [8], "data_offsets": [4, 12]}})
    assert "inside the tensor before it" in refused(tmp_path, "m.safetensors", overlap + bytes(12))
    gap = mf.safetensors({"a": ("U8", [4], bytes(4))}) + bytes(4)
    assert "4 bytes belong to no tensor" in refused(tmp_path, "m.safetensors", gap)
    huge = struct.pack("<Q", 1 << 40) + b"{}"
    assert "more than safetensors allows" in refused(tmp_path, "m.safetensors", huge)
    data = bytearray(mf.safetensors())
    data[9] = ord("!")  # inside the JSON
    assert "the header is not valid JSON" in refused(tmp_path, "m.safetensors", bytes(data))
    not_json = struct.pack("<Q", 4) + b"[1] "
    assert "does not start with '{'" in refused(tmp_path, "m.safetensors", not_json)


def test_damaged_gguf_headers(tmp_path: Path) -> None:
    good = mf.gguf()
    assert "does not start with the GGUF magic" in refused(
        tmp_path, "m.gguf", b"GGML" + good[4:])
    assert "which is no GGUF version" in refused(
        tmp_path, "m.gguf", good[:4] + struct.pack("<I", 0xDEADBEEF) + good[8:])
    assert "more than the rest of the file" in refused(
        tmp_path, "m.gguf", good[:8] + struct.pack("<Q", 10**12) + good[16:])
    # The second metadata entry's type (general.alignment's uint32) made type 13.
    at = good.index(b"general.alignment") + len(b"general.alignment")
    damaged = good[:at] + struct.pack("<I", 13) + good[at + 4:]
    assert "'general.alignment' has value type 13, which GGUF does not define" in refused(
        tmp_path, "m.gguf", damaged)
    newer = check(tmp_path, "m.gguf", good[:4] + struct.pack("<I", 4) + good[8:])
    assert newer.ok and "newer than laden reads" in newer.detail  # not refused: unknown


def test_damaged_checkpoints_and_archives(tmp_path: Path) -> None:
    assert "lists no data.pkl: not a PyTorch checkpoint" in refused(
        tmp_path, "m.pt", mf.npz())
    assert check(tmp_path, "other.bin", mf.npz()) is None  # a zip, not torch's: not checked
    assert "neither a zip archive nor a legacy pickle" in refused(
        tmp_path, "m.pth", b"\x00" * 64)
    assert "a pickle without PyTorch's magic number" in refused(
        tmp_path, "m.pt", b"\x80\x02}q\x00." + bytes(40))
    cut_pickle = mf.torch_zip(structure=b"\x80\x02}q\x00")
    assert "does not end with a pickle's STOP" in refused(tmp_path, "m.pt", cut_pickle)
    data = bytearray(mf.torch_zip())
    data[data.index(mf.TORCH_STRUCTURE) + 3] ^= 0xFF  # inside data.pkl: its CRC fails
    assert "cannot be read: Bad CRC-32" in refused(tmp_path, "m.pt", bytes(data))
    data = bytearray(mf.torch_zip())
    second = data.index(b"PK\x03\x04", 10)
    data[second:second + 4] = b"XXXX"
    assert "has no local header at byte" in refused(tmp_path, "m.pt", bytes(data))
    assert "member 'notes.txt' is not a .npy array" in refused(
        tmp_path, "a.npz", mf.npz({"notes.txt": b"hello"}))
    wrong_shape = mf.npz({"w.npy": mf.npy(shape=(2, 3), data=bytes(20))})
    assert "member 'w.npy' has shape (2, 3)" in refused(tmp_path, "a.npz", wrong_shape)
    garbage = mf.npz({"w.npy": b"\x93NUMPY\x01\x00\x08\x00os.system" + bytes(10)})
    assert "header that is not a Python literal" in refused(tmp_path, "a.npz", garbage)


def test_damaged_onnx_framing(tmp_path: Path) -> None:
    good = mf.onnx()
    assert "wire type 7" in refused(tmp_path, "m.onnx", bytes([0x0F]) + good)
    assert "ir_version (field 1) of the model at byte 0 is length-delimited, not varint" in \
        refused(tmp_path, "m.onnx", mf.field(1, b"8") + good[2:])
    assert "the model has no graph (field 7)" in refused(
        tmp_path, "m.onnx", mf.field(1, 8) + mf.field(8, mf.field(2, 17)))
    broken_graph = mf.onnx(graph=mf.field(1, b"node") + bytes([0x2A, 0x7F]))  # 127 bytes, 0 left
    assert "initializer (field 5) at byte" in refused(tmp_path, "m.onnx", broken_graph)
    assert "the graph ends at byte" in refused(tmp_path, "m.onnx", broken_graph)


def test_pages_and_pointers_saved_as_models(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html>\n<html><body>Sign in</body></html>"
    assert refused(tmp_path, "model.safetensors", page) == (
        "it is an HTML page, not a safetensors file")
    pointer = (b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64
               + b"\nsize 9437312\n")
    assert "a Git LFS pointer" in refused(tmp_path, "model.gguf", pointer)
    assert "XML document" in refused(tmp_path, "model.onnx", b"<?xml version='1.0'?><Error/>")


@pytest.mark.parametrize("name", sorted(mf.VALID))
def test_random_damage_never_raises(tmp_path: Path, name: str) -> None:
    """Whatever the bytes, the check answers with a verdict, never with an exception."""
    data = mf.VALID[name]()
    chance = random.Random(name)
    path = tmp_path / name
    for _ in range(300):
        damaged = bytearray(data)
        for _ in range(chance.randint(1, 4)):
            damaged[chance.randrange(len(damaged))] = chance.randrange(256)
        path.write_bytes(bytes(damaged))
        report = check_file(path)
        assert report is None or "\n" not in report.detail


# -- downloads -----------------------------------------------------------------------------


def _cut_safetensors() -> bytes:
    """A safetensors file whose last tensor is missing its end: the server's copy was cut
    short when it was uploaded, so its size and any checksum agree with it."""
    return _whole_safetensors()[:200_000]


def _whole_safetensors() -> bytes:
    return mf.safetensors({"w": ("F32", [256, 256], bytes(262_144))})


CUT = (f"tensor 'w' ends at byte {len(_whole_safetensors()):,} but the file has "
       "200,000 bytes")
"""What laden says of `_cut_safetensors`."""


def test_downloads_check_model_files_before_the_final_rename(http_server,
                                                               downloads: Path) -> None:
    good = http_server.add_file("/model.safetensors", mf.safetensors())
    gguf = http_server.add_file("/model.gguf", mf.gguf())
    cut = http_server.add_file("/cut/model.safetensors", _cut_safetensors())
    npz = http_server.add_file("/arrays.npz", mf.npz()[:-10])
    seen: list[events.Event] = []
    with manager() as m:
        m.subscribe(lambda e: seen.append(e) if isinstance(e, events.FormatChecked) else None)
        first, second = m.wait(m.add(good, str(downloads))), m.wait(m.add(gguf, str(downloads)))
        third = m.wait(m.add(cut, str(downloads / "cut") + "/"))
        fourth = m.wait(m.add(npz, str(downloads)))
    assert first.state.value == second.state.value == "done"
    assert first.format_check.ok and first.format_check.kind == "safetensors"
    assert second.format_check.ok and second.format_check.kind == "GGUF"
    assert (downloads / "model.safetensors").read_bytes() == mf.safetensors()
    assert third.state.value == "failed"
    assert third.message == CUT
    assert third.errors[-1].permanent
    assert not (downloads / "cut" / "model.safetensors").exists()
    assert [p.name for p in part_files(downloads / "cut")] == ["model.safetensors.laden-part"]
    assert fourth.state.value == "failed"
    assert "zip central directory cannot be read" in fourth.message
    assert [(e.kind, e.ok) for e in sorted(seen, key=lambda e: e.download_id)] == [
        ("safetensors", True), ("GGUF", True), ("safetensors", False),
        ("NumPy archive (.npz)", False)]


def test_small_bin_files_are_checked_from_the_answer_they_came_in(http_server,
                                                                   downloads: Path) -> None:
    """A `.bin` small enough to come whole in one answer: a checkpoint is checked (a cut one
    refused) and one that starts as no checkpoint is passed over, as from the disk."""
    checkpoint = http_server.add_file("/ok/pytorch_model.bin", mf.torch_zip())
    cut = http_server.add_file("/cut/pytorch_model.bin", mf.torch_zip()[:-30])
    legacy = http_server.add_file("/old/pytorch_model.bin", mf.torch_legacy())
    other = http_server.add_file("/raw/firmware.bin", b"\x7fELF" + bytes(5000))
    with manager() as m:
        infos = [m.wait(m.add(url, str(downloads / name) + "/"))
                 for url, name in ((checkpoint, "ok"), (cut, "cut"), (legacy, "old"),
                                   (other, "raw"))]
    ok, broken, old, raw = infos
    assert ok.state.value == "done" and ok.format_check.ok
    assert ok.format_check.kind == "PyTorch checkpoint (zip)"
    assert broken.state.value == "failed" and broken.errors[-1].permanent
    assert not (downloads / "cut" / "pytorch_model.bin").exists()
    assert old.state.value == "done"
    assert old.format_check.kind == "PyTorch checkpoint (legacy pickle)"
    assert raw.state.value == "done" and raw.format_check is None
    assert (downloads / "raw" / "firmware.bin").read_bytes() == b"\x7fELF" + bytes(5000)


def test_the_check_can_be_turned_off(http_server, downloads: Path) -> None:
    cut = http_server.add_file("/model.safetensors", _cut_safetensors())
    with manager() as m:
        info = m.wait(m.add(cut, str(downloads / "one") + "/", format_check=False))
    assert info.state.value == "done" and info.format_check is None
    with manager(FAST.replace(format_check=False)) as m:
        info = m.wait(m.add(cut, str(downloads / "all") + "/"))
    assert info.state.value == "done"
    assert (downloads / "all" / "model.safetensors").read_bytes() == _cut_safetensors()


def test_a_checksum_mismatch_comes_before_the_structure(http_server, downloads: Path) -> None:
    cut = http_server.add_file("/model.safetensors", _cut_safetensors())
    with manager() as m:
        info = m.wait(m.add(cut, str(downloads), checksum="md5:" + "0" * 32))
    assert "md5 checksum mismatch" in info.message and info.format_check is None


def test_a_format_error_is_a_permanent_failure() -> None:
    from laden.core.errors import FormatError

    assert exit_code_of(FormatError("tensor 'w' ends ...", kind="safetensors")) == PERMANENT_EXIT


# -- the command line ----------------------------------------------------------------------


def test_laden_get_refuses_a_cut_model_file_in_one_line(http_server, downloads: Path) -> None:
    url = http_server.add_file("/model.safetensors", _cut_safetensors())
    got = run_laden("get", "--json", "-o", str(downloads), url)
    assert got.returncode == 1
    assert got.stderr.strip().splitlines() == [f"laden: model.safetensors: {CUT}"]
    checked = [json.loads(line) for line in got.stdout.splitlines()
               if '"formatchecked"' in line]
    assert [(c["kind"], c["ok"], c["message"]) for c in checked] == [("safetensors", False, CUT)]
    kept = run_laden("resume", "--all", "--no-format-check", "-q")
    assert kept.returncode == 0, kept.stderr
    assert (downloads / "model.safetensors").read_bytes() == _cut_safetensors()


def test_laden_verify_checks_the_structure(http_server, downloads: Path) -> None:
    url = http_server.add_file("/model.onnx", mf.onnx())
    got = run_laden("get", "-q", "-o", str(downloads), url)
    assert got.returncode == 0, got.stderr
    download_id = json.loads(run_laden("list", "--json").stdout.splitlines()[0])["id"]
    verified = run_laden("verify", str(download_id))
    assert verified.returncode == 0, verified.stdout
    assert "ONNX structure checked: IR version 8, 1 node, 1 initializer" in verified.stdout
    alone = downloads / "elsewhere.safetensors"  # a file laden did not download
    alone.write_bytes(_cut_safetensors())
    refused_alone = run_laden("verify", str(alone))
    assert refused_alone.returncode == 1
    assert refused_alone.stdout.strip() == f"FAILED: {alone}: {CUT}"
    fine = downloads / "fine.gguf"
    fine.write_bytes(mf.gguf())
    passed = run_laden("verify", str(fine))
    assert passed.returncode == 0 and passed.stdout.startswith(f"ok: {fine}: GGUF, version 3")
