#!/usr/bin/env python3
"""The cost of laden's model-file check next to the cost of hashing the same file.

    .venv/bin/python bench/format_check.py [--size 2G] [--tensors 2000] [--runs 20]

Writes a .safetensors file of SIZE (its header describes TENSORS tensors, like a shard of a
large model; the data is a sparse run of zeros, since the check never reads it), a GGUF file
with a 150,000-token vocabulary (the check walks every metadata string), and times
`formats.check_file` on each (median of RUNS) against one sha256 pass over the safetensors
file, which laden makes anyway when a checksum is known. The files go in a temporary folder
under /var/tmp and are deleted at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from laden.core.units import parse_size  # noqa: E402
from laden.engine.formats import check_file  # noqa: E402


def write_safetensors(path: str, size: int, tensors: int) -> int:
    """A header of `tensors` BF16 tensors sharing `size` bytes (about), then a sparse hole."""
    per = max(2, (size // tensors) // 2 * 2)
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    for index in range(tensors):
        header[f"model.layers.{index // 10}.mlp.w{index % 10}.weight"] = {
            "dtype": "BF16", "shape": [per // 2],
            "data_offsets": [index * per, (index + 1) * per]}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)) + text)
        handle.truncate(8 + len(text) + tensors * per)
    return os.path.getsize(path)


def write_gguf(path: str, tokens: int) -> int:
    def string(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    vocabulary = b"".join(string(f"token{index}") for index in range(tokens))
    metadata = (string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, tokens) + vocabulary
                + string("tokenizer.ggml.scores") + struct.pack("<IIQ", 9, 6, tokens)
                + bytes(4 * tokens))
    info = string("output.weight") + struct.pack("<I", 1) + struct.pack("<Q", 4096) \
        + struct.pack("<IQ", 0, 0)
    head = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + metadata + info
    head += bytes(-len(head) % 32)
    with open(path, "wb") as handle:
        handle.write(head + bytes(4 * 4096))
    return os.path.getsize(path)


def timed(function, runs: int) -> float:  # noqa: ANN001 - a callable of no arguments
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2G")
    parser.add_argument("--tensors", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="laden-format-bench-") as folder:
        model = os.path.join(folder, "model.safetensors")
        size = write_safetensors(model, parse_size(args.size), args.tensors)
        report = check_file(model)
        assert report is not None and report.ok, report
        check = timed(lambda: check_file(model), args.runs)
        start = time.perf_counter()
        with open(model, "rb") as handle:
            hashlib.file_digest(handle, "sha256")
        hashing = time.perf_counter() - start
        print(f"safetensors {size:,} bytes, {args.tensors:,} tensors ({report.detail}):")
        print(f"  format check {check * 1000:.2f} ms (median of {args.runs}); one sha256 pass "
              f"{hashing:.2f} s; check / hash = {check / hashing:.5f}")
        vocabulary = os.path.join(folder, "model.gguf")
        size = write_gguf(vocabulary, 150_000)
        report = check_file(vocabulary)
        assert report is not None and report.ok, report
        check = timed(lambda: check_file(vocabulary), max(3, args.runs // 4))
        print(f"gguf {size:,} bytes with a 150,000-token vocabulary ({report.detail}): "
              f"format check {check * 1000:.1f} ms")


if __name__ == "__main__":
    main()
