"""Property tests (hypothesis) of the three parsers that take input from outside: the
Content-Disposition parser, the range planner under interleaved connections, and the manifest
loader. They extend tests/engine/test_units.py, which checks the planner with one connection at
a time and the header parser on unstructured text."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import unicodedata
from typing import Any
from urllib.parse import quote

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from laden.core.errors import LadenError
from laden.core.names import MAX_NAME_BYTES, filename_from_content_disposition, sanitize_filename
from laden.engine.segments import Segment, SegmentPlan

# -- Content-Disposition ---------------------------------------------------------------------

_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


def _is_safe(name: str | None, *, windows: bool = False) -> bool:
    if name is None:
        return True
    return (
        bool(name)
        and "/" not in name and "\\" not in name
        and not any(ord(c) < 32 or ord(c) == 127 for c in name)
        and set(name) != {"."}
        and len(name.encode()) <= MAX_NAME_BYTES
        and name == name.strip()
        and unicodedata.is_normalized("NFC", name)
        and (not windows or (
            not any(c in name for c in '<>:"|?*')
            and not name.endswith((".", " "))
            and name.split(".")[0].upper() not in _RESERVED))
    )


_TOKENS = [*"./\\\x00\x1b\t\r\n \"';=*%:<>|?", "..", "CON", "nul", "é", "e\u0301", "~"]
hostile_text = st.lists(st.one_of(st.sampled_from(_TOKENS), st.characters()),
                        max_size=120).map("".join)


@st.composite
def dispositions(draw: st.DrawFn) -> tuple[str, str | None]:
    """A Content-Disposition header, and the `filename*` value it carries when that one is
    well-formed (which must then win)."""
    parts = [draw(st.sampled_from(["attachment", "inline", "form-data", "", "ATTACHMENT"]))]
    extended = None
    clean = True  # no stray quote that would swallow the parameters after it
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["plain", "quoted", "extended", "junk", "other"]))
        value = draw(hostile_text)
        clean = clean and (kind in ("quoted", "extended") or '"' not in value)
        if kind == "plain":
            parts.append(f"filename={value}")
        elif kind == "quoted":
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'filename="{escaped}"')
        elif kind == "extended":
            charset = draw(st.sampled_from(["UTF-8", "utf-8", "ISO-8859-1", "bogus", ""]))
            encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
            parts.append(f"filename*={charset}'{draw(st.sampled_from(['', 'en']))}'{encoded}")
            if extended is None and charset.lower() == "utf-8":
                try:
                    value.encode("utf-8")
                    extended = value
                except UnicodeEncodeError:
                    pass
        elif kind == "junk":
            parts.append(value)
        else:
            parts.append(f"{draw(st.sampled_from(['size', 'name', 'x-y']))}={value}")
    separator = draw(st.sampled_from(["; ", ";", " ; "]))
    return separator.join(parts), extended if clean else None


@settings(max_examples=400, deadline=None)
@given(dispositions())
def test_content_disposition_is_always_one_safe_name(case: tuple[str, str | None]) -> None:
    header, extended = case
    name = filename_from_content_disposition(header)
    assert _is_safe(name), repr(name)
    if extended is not None and sanitize_filename(extended) and \
            header.lower().count("filename*=") == 1:
        # A well-formed RFC 8187 value beats a plain filename, wherever it stands.
        assert name == sanitize_filename(extended), (header, name)


@settings(max_examples=400, deadline=None)
@given(hostile_text, st.booleans())
def test_sanitize_is_safe_on_both_systems_and_idempotent(text: str, windows: bool) -> None:
    name = sanitize_filename(text, windows=windows)
    assert _is_safe(name, windows=windows), repr(name)
    if name is not None:
        assert sanitize_filename(name, windows=windows) == name, "sanitising twice changed it"


# -- the range planner, connections interleaved ------------------------------------------------


class ConnectionsInterleaved(RuleBasedStateMachine):
    """Connections of one download as the engine drives them, in any interleaving: take a
    segment, reserve a read, (others split meanwhile), write part or all of it, fail and give the
    segment back. The model is the file: every byte must be written exactly once."""

    def __init__(self) -> None:
        super().__init__()
        self.plan: SegmentPlan | None = None
        self.written = bytearray()
        self.held: dict[int, Segment] = {}
        self.reading: dict[int, int] = {}

    @precondition(lambda self: self.plan is None)
    @rule(size=st.integers(1, 8 << 20), done=st.lists(st.tuples(st.integers(0, 8 << 20),
                                                                 st.integers(1, 1 << 20)),
                                                       max_size=3),
          split=st.integers(1, 32), min_size=st.sampled_from([1, 4096, 65536, 1 << 20]))
    def start(self, size: int, done: list[tuple[int, int]], split: int,
              min_size: int) -> None:
        ranges = [(s, min(size, s + n)) for s, n in done if s < size]
        self.plan = SegmentPlan(size, ranges, min_size=min_size)
        self.written = bytearray(size)
        for start, end in ranges:
            self.written[start:end] = b"\1" * (end - start)
        self.plan.split_for(split)

    @precondition(lambda self: self.plan is not None)
    @rule(number=st.integers(0, 12))
    def take(self, number: int) -> None:
        assert self.plan is not None
        if number in self.held and not self.held[number].finished:
            return
        segment = self.plan.take(number)
        if segment is not None:
            self.held[number] = segment

    @precondition(lambda self: self.plan is not None)
    @rule(number=st.integers(0, 12), amount=st.integers(1, 3 << 20))
    def reserve(self, number: int, amount: int) -> None:
        assert self.plan is not None
        segment = self.held.get(number)
        if segment is None or number in self.reading or segment.connection != number:
            return
        self.reading[number] = self.plan.reserve(segment, amount)

    @precondition(lambda self: self.plan is not None)
    @rule(number=st.integers(0, 12), fraction=st.floats(0, 1))
    def complete_read(self, number: int, fraction: float) -> None:
        """The read returns (readinto may give fewer bytes than asked) and is written."""
        assert self.plan is not None
        if number not in self.reading:
            return
        segment = self.held[number]
        got = int(self.reading.pop(number) * fraction)
        start = segment.position
        assert start + got <= segment.end, "a split cut below a read in flight"
        block = self.written[start:start + got]
        assert not any(block), f"bytes {start}-{start + got} written twice"
        self.written[start:start + got] = b"\1" * got
        self.plan.advance(segment, got)

    @precondition(lambda self: self.plan is not None)
    @rule(number=st.integers(0, 12))
    def fail(self, number: int) -> None:
        assert self.plan is not None
        segment = self.held.get(number)
        if segment is None or number in self.reading:
            return  # a connection fails between reads, never inside one
        if segment.connection == number:
            self.plan.release(segment)
        del self.held[number]

    @invariant()
    def tiles_the_file(self) -> None:
        if self.plan is not None:
            self.plan.check()
            done = sum(e - s for s, e in self.plan.done_ranges())
            assert done == sum(self.written), "done ranges and the bytes written disagree"

    def teardown(self) -> None:
        plan = self.plan
        if plan is None:
            return
        for number, got in list(self.reading.items()):
            segment = self.held[number]
            self.written[segment.position:segment.position + got] = b"\1" * got
            plan.advance(segment, got)
        for segment in self.held.values():
            if segment.connection is not None and not segment.finished:
                plan.release(segment)
        while (segment := plan.take(999)) is not None:
            n = plan.reserve(segment, segment.remaining)
            assert not any(self.written[segment.position:segment.position + n])
            self.written[segment.position:segment.position + n] = b"\1" * n
            plan.advance(segment, n)
        plan.check()
        assert plan.finished and all(self.written), "some bytes can never be downloaded"


ConnectionsInterleaved.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
test_connections_interleaved = ConnectionsInterleaved.TestCase


@settings(max_examples=25, deadline=None)
@given(size=st.integers(1, 4 << 20), connections=st.integers(1, 16),
       min_size=st.sampled_from([1, 4096, 65536]), seed=st.integers(0, 1 << 30))
def test_planner_with_real_threads(size: int, connections: int, min_size: int,
                                   seed: int) -> None:
    """The same with the planner's own lock doing the work: threads race for splits."""
    import random

    plan = SegmentPlan(size, min_size=min_size)
    plan.split_for(connections)
    written = bytearray(size)
    lock = threading.Lock()
    errors: list[str] = []

    def connection(number: int) -> None:
        rng = random.Random(seed + number)
        while (segment := plan.take(number)) is not None:
            while not segment.finished and segment.connection == number:
                n = plan.reserve(segment, rng.randint(1, 256 << 10))
                if n == 0:
                    break
                got = rng.randint(0, n)
                with lock:
                    if any(written[segment.position:segment.position + got]):
                        errors.append(f"overlap at {segment.position}")
                    written[segment.position:segment.position + got] = b"\1" * got
                plan.advance(segment, got)
                if rng.random() < 0.02:
                    plan.release(segment)
                    break

    threads = [threading.Thread(target=connection, args=(n,)) for n in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    connection(999)  # whatever was given back last
    assert not errors, errors[:3]
    plan.check()
    assert plan.finished and all(written)


# -- the manifest loader -----------------------------------------------------------------------

_KEYS = ["type", "name", "url", "target_path", "buckets", "containers", "items", "file",
         "folder", "path", "glob", "checksum", "connections", "limit_rate", "overwrite",
         "repo_id", "files", "revision", "repo_type", "headers", "username", "password",
         "endpoint_url", "access_key_id", "secret_key", "bearer_token", "ca_bundle",
         "connection_string", "account_url", "download_root", "download_items", "x"]
_TYPES = ["s3", "gcs", "azure-blob", "hf", "http", "ftp", "bogus"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 100), st.floats(allow_nan=False, width=32),
    st.sampled_from(_TYPES + ["http://127.0.0.1:9/x", "ftp://127.0.0.1:9/d/", "s3://b/k",
                              "a.bin", "sub/", "../up", "**/*.csv", "sha256:" + "a" * 64,
                              "owner/repo", "5M", "fast", "", "~/x", "a\x00b"]),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(_KEYS), inner, max_size=6)),
    max_leaves=25,
)
items = st.dictionaries(st.sampled_from(_KEYS), values, max_size=8).map(
    lambda d: {"type": d.get("type", "http"), **d})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.fixed_dictionaries({"download_items": st.lists(items, max_size=4)},
                          optional={"download_root": values}),
    values,
))
def test_manifest_loader_accepts_or_names_the_problem(document: Any) -> None:
    from laden.manifest import ManifestError, load_manifest

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "manifest.yaml")
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(document, handle, allow_unicode=True)
        try:
            manifest = load_manifest(path, cwd=folder)
        except ManifestError as exc:
            assert str(exc).strip() and "Traceback" not in str(exc)
            return
        except LadenError as exc:  # pragma: no cover - any other must still be one of ours
            raise AssertionError(f"not a ManifestError: {type(exc).__name__}: {exc}") from exc
    root = manifest.download_root
    for item in manifest.items:
        for target in item.targets:
            assert os.path.isabs(target.dest)
            given_absolute = any(isinstance(v, str) and v.startswith(("/", "~"))
                                 for v in _strings(document))
            if not given_absolute:
                assert os.path.commonpath([root, os.path.normpath(target.dest)]) == root, \
                    f"{target.dest} is outside {root}"


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_manifest_loader_on_arbitrary_bytes(data: bytes) -> None:
    from laden.manifest import ManifestError, load_manifest

    with tempfile.TemporaryDirectory() as folder:
        for name in ("m.yaml", "m.toml"):
            path = os.path.join(folder, name)
            with open(path, "wb") as handle:
                handle.write(data)
            with contextlib.suppress(ManifestError):
                load_manifest(path, cwd=folder)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
