"""Reading a manifest file: YAML (Kaiwo's format, as it is) or the same structure in TOML.

A manifest is input from anywhere, so what is read is bounded before it is used: the file's
size, the number of values the document expands to (YAML aliases make a few lines into
billions: the "billion laughs"), and how deeply they nest.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable
from typing import Any

import yaml  # type: ignore[import-untyped]

from ..core.errors import InputError

MAX_BYTES = 16 * 1024 * 1024
"""The largest manifest read: thousands of times any real one, and about ten seconds of
PyYAML's reading where libyaml is missing."""
MAX_VALUES = 250_000
"""Values (mappings, lists, scalars, keys) a document may expand to, each alias counted as
often as it is used: some 50,000 file entries."""
MAX_DEPTH = 100
"""Nesting a document may have; a real manifest is about ten deep."""


class ManifestError(InputError):
    """The manifest cannot be used; the message names the file, the item and the field."""


def read_document(path: str) -> dict[str, Any]:
    """The manifest's top-level mapping. `.toml` files are TOML; anything else is YAML (which
    also reads JSON).

    Raises:
        ManifestError: the file cannot be read, is too large, does not parse, expands to too
            many values or nests too deeply, or is not a mapping.
    """
    text = _read_text(path)
    try:
        if os.path.splitext(path)[1].lower() == ".toml":
            document = _toml(path, text)
        else:
            document = _yaml(path, text)
    except RecursionError:
        raise ManifestError(f"{path} nests too deeply (at most {MAX_DEPTH} levels)") from None
    if not isinstance(document, dict):
        raise ManifestError(
            f"{path}: expected a mapping with download_items at the top, "
            f"not {type(document).__name__}")
    return document


def _read_text(path: str) -> str:
    try:
        # Bounded: /dev/zero or a runaway pipe (`laden run <(...)` is fine) must not fill memory.
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ManifestError(f"{path} is larger than {MAX_BYTES // 1024 // 1024} MiB: "
                            "not a manifest")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not a UTF-8 text file") from None


def _toml(path: str, text: str) -> Any:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ManifestError(f"{path} is not valid TOML: {exc}") from None
    except ValueError as exc:  # a whole number of more than 4,300 digits
        raise ManifestError(f"{path} holds a value that cannot be read: {_cut(exc)}") from None
    _check_size(path, document, _python_children)
    return document


def _yaml(path: str, text: str) -> Any:
    try:
        shared = True
        if _FAST_LOADER is not None:
            shared = _measure_text(path, text)
            loader = _FAST_LOADER(text)
        else:
            loader = _CountingLoader(text)  # checks the characters already
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            if shared:
                # Counted before anything is built: aliases share one node, so the graph is
                # small even when what it expands to is not.
                _check_size(path, node, _node_children)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except _TooLarge:
        raise ManifestError(f"{path} has more than {MAX_VALUES:,} values") from None
    except ManifestError:
        raise  # an InputError is a ValueError too: not "a value that cannot be read"
    except yaml.MarkedYAMLError as exc:
        if "maximum nesting depth" in str(exc.problem):  # libyaml's own limit, at 1,000
            raise ManifestError(f"{path} nests too deeply (at most {MAX_DEPTH} levels)") from None
        mark = exc.problem_mark
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise ManifestError(f"{path} is not valid YAML{where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path} is not valid YAML: {_cut(exc)}") from None
    except ValueError as exc:  # a 5,000-digit number, a date like 2024-13-45
        raise ManifestError(f"{path} holds a value that cannot be read: {_cut(exc)}") from None


def _cut(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 100 else text[:100] + "…"


class _TooLarge(Exception):
    pass


class _CountingLoader(yaml.SafeLoader):  # type: ignore[misc]
    """PyYAML's safe loader, stopping once the text itself holds more than MAX_VALUES nodes
    (before aliases: those are counted by `_check_size`), so composing stays bounded too."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.nodes > MAX_VALUES:
            raise _TooLarge
        return super().compose_node(parent, index)


_FAST_LOADER = getattr(yaml, "CSafeLoader", None)
"""PyYAML's safe loader with libyaml's parser (in PyYAML's wheels): 5,000 file entries read
in a tenth of the pure-Python loader's time."""


def _measure_text(path: str, text: str) -> bool:
    """What `_CountingLoader` checks while it composes, for libyaml's loader, which cannot be
    hooked: the nodes the text holds, counted from its events one at a time before a graph
    of them is built. Without an alias that is the whole document, so its depth is checked
    here too, and the answer is False: `_check_size` has nothing left to find."""
    nodes = open_collections = 0
    shared = False
    for event in yaml.parse(text, Loader=_FAST_LOADER):
        kind = type(event)
        if kind in _ENDS:
            open_collections -= 1
            continue
        if kind not in _NODES:
            continue  # the stream's and document's own events
        nodes += 1
        if nodes > MAX_VALUES:
            raise _TooLarge
        if open_collections >= MAX_DEPTH:  # this node is one level deeper than those
            raise ManifestError(f"{path} nests too deeply (at most {MAX_DEPTH} levels)")
        if kind in _STARTS:
            open_collections += 1
        elif kind is yaml.AliasEvent:
            shared = True
    return shared


_STARTS = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_ENDS = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
_NODES = (*_STARTS, yaml.ScalarEvent, yaml.AliasEvent)


def _node_children(node: Any) -> Iterable[Any]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return ()


def _python_children(value: Any) -> Iterable[Any]:
    if isinstance(value, dict):
        return value.values()
    if isinstance(value, list):
        return value
    return ()


def _check_size(path: str, root: Any, children: Callable[[Any], Iterable[Any]]) -> None:
    """Refuse a document that expands to more than MAX_VALUES values, nests deeper than
    MAX_DEPTH, or holds itself (`&a [*a]`).

    Each shared node is measured once (memoised by identity) and counted as often as it is
    used, so a billion laughs costs its few dozen nodes, not its billion values. Iterative:
    the document may be as deep as the parser allowed.
    """
    measured: dict[int, tuple[int, int]] = {}  # id -> (values it expands to, its depth)
    open_ids: set[int] = set()  # the nodes on the path from the root to the current one
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_ids.discard(key)
            sizes = [measured[id(child)] for child in children(node)]
            count = 1 + sum(size for size, _ in sizes)
            depth = 1 + max((deep for _, deep in sizes), default=0)
            if count > MAX_VALUES:
                raise ManifestError(f"{path} expands to more than {MAX_VALUES:,} values "
                                    "(through its aliases, or as written)")
            if depth > MAX_DEPTH:
                raise ManifestError(f"{path} nests too deeply (at most {MAX_DEPTH} levels)")
            measured[key] = (count, depth)
            continue
        if key in measured:
            continue
        open_ids.add(key)
        stack.append((node, True))
        for child in children(node):
            if id(child) in open_ids:
                raise ManifestError(f"{path} refers to itself through an alias")
            if id(child) not in measured:
                stack.append((child, False))
