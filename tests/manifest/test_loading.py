"""The bounds on what a YAML manifest may expand to hold alike with libyaml's loader (what
PyYAML's wheels bring) and with PyYAML's own, which counts while it composes."""

from __future__ import annotations

from pathlib import Path

import pytest

from laden.manifest import loading
from laden.manifest.loading import MAX_DEPTH, MAX_VALUES, ManifestError, read_document

DOCUMENTS = {
    "lists at the deepest allowed": "a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1),
    "lists one deeper": "a: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH,
    "a value at the deepest allowed": "a: " + "[" * (MAX_DEPTH - 2) + "1" + "]" * (MAX_DEPTH - 2),
    "a value one deeper": "a: " + "[" * (MAX_DEPTH - 1) + "1" + "]" * (MAX_DEPTH - 1),
    "mappings one deeper": "a: " + "{a: " * (MAX_DEPTH - 1) + "1" + "}" * (MAX_DEPTH - 1),
    "the most values": "a: [" + "1," * (MAX_VALUES - 3) + "]",
    "one value more": "a: [" + "1," * (MAX_VALUES - 2) + "]",
    "aliases": "x: &x [1, 2]\na: [*x, *x]",
    "an alias inside itself": "a: &a [*a]",
}


def _outcome(text: str, folder: Path) -> str:
    path = folder / "m.yaml"
    path.write_text(text)
    try:
        read_document(str(path))
    except ManifestError as exc:
        return str(exc).replace(str(folder) + "/", "")
    return "read"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_both_loaders_draw_the_same_lines(name: str, monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    assert loading._FAST_LOADER is not None, "PyYAML without libyaml"
    fast = _outcome(DOCUMENTS[name], tmp_path)
    monkeypatch.setattr(loading, "_FAST_LOADER", None)  # PyYAML's own, counting as it composes
    assert _outcome(DOCUMENTS[name], tmp_path) == fast
    expected = "read" if name in ("lists at the deepest allowed", "a value at the deepest allowed",
                                  "the most values", "aliases") else "m.yaml "
    assert fast.startswith(expected), fast


MANIFEST = """\
download_root: /data
defaults: &defaults {verify: yes, retries: 3, timeout: 1.5e1}
download_items:
  - type: s3
    <<: *defaults
    endpoint_url: "http://127.0.0.1:9000"
    buckets:
      - name: models
        items:
          - {folder: "weights/", target_path: w, glob: "*.safetensors"}
  - type: http
    url: http://127.0.0.1:8080/a.bin
    target_path: a.bin
    checksum: 'sha256:00ff'
    size: 0x10
    when: 2024-01-02
    note: ~
    anonymous: off
"""


def test_both_loaders_build_the_same_document(monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MANIFEST)
    fast = read_document(str(path))
    monkeypatch.setattr(loading, "_FAST_LOADER", None)
    assert read_document(str(path)) == fast
    assert fast["download_items"][0]["verify"] is True and fast["download_items"][1]["size"] == 16
