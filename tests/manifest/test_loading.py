"""The bounds on what a YAML manifest may expand to hold alike with libyaml's loader (what
PyYAML's wheels bring) and with PyYAML's own, which counts while it composes."""

from __future__ import annotations

import pytest

from laden.manifest import loading
from laden.manifest.loading import MAX_DEPTH, MAX_VALUES, ManifestError

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


def _outcome(text: str) -> str:
    try:
        loading._yaml("m.yaml", text)
    except ManifestError as exc:
        return str(exc)
    return "read"


@pytest.mark.parametrize("name", DOCUMENTS)
def test_both_loaders_draw_the_same_lines(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    assert loading._FAST_LOADER is not None, "PyYAML without libyaml"
    fast = _outcome(DOCUMENTS[name])
    monkeypatch.setattr(loading, "_FAST_LOADER", None)
    assert _outcome(DOCUMENTS[name]) == fast
    expected = "read" if name in ("lists at the deepest allowed", "a value at the deepest allowed",
                                  "the most values", "aliases") else "m.yaml "
    assert fast.startswith(expected), fast
