"""`laden get -i FILE`: a list of URLs, one per line, or aria2's input-file form.

aria2's form (aria2c(1), "Input File"): lines starting with `#` are comments; a line of URIs
separated by TABs names one file from several mirrors (laden takes the first); option lines
after it start with a space or tab and hold one `name=value` each, with the `--` of the
command-line option left out. `out` is relative to `dir`, and may name a subfolder. The file may
be gzip-compressed, and `-` reads standard input.

Options laden has no use for (BitTorrent, Metalink, RPC) are ignored, so existing lists work.
"""

from __future__ import annotations

import logging
import os
import sys
import zlib
from typing import Any

from ..core.checksums import parse_checksum
from ..core.config import MAX_CONNECTIONS
from ..core.errors import InputError, LadenError
from ..core.options import DownloadOptions, check_proxy
from ..core.units import parse_rate
from ..core.urls import shown_address

log = logging.getLogger("laden.cli")

_TRUE = ("true", "yes", "1", "")


def read_input_file(
    path: str, default_dir: str | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """(url, DownloadOptions fields plus "dest") for each entry of the file.

    `default_dir` is the `-o` folder, which `out=sub/name` is relative to when no `dir` is given.
    """
    lines = _read_lines(path)
    entries: list[tuple[str, dict[str, Any]]] = []
    raw: list[dict[str, str]] = []
    starts: list[int] = []
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in " \t":
            if line.lstrip().startswith("#"):
                continue
            if not entries:
                raise InputError(f"{path}, line {number}: an option line before any URL")
            where = f"{path}, line {number}"
            name, found, value = line.strip().partition("=")
            if not found:
                raise InputError(f"{where}: expected name=value, not {_cut(line.strip())!r}")
            _apply(entries[-1], raw[-1], name.strip(), value.strip(), where)
        else:
            url = next((u.strip() for u in line.split("\t") if u.strip()), "")
            entries.append((url, {}))
            raw.append({})
            starts.append(number)
    for (url, fields), given, number in zip(entries, raw, starts, strict=True):
        _place(url, fields, given, default_dir)
        try:  # what the options refuse, refused here, where the file and the line are known
            DownloadOptions(**{k: v for k, v in fields.items() if k != "dest"})
        except LadenError as exc:
            raise InputError(f"{path}, line {number}: {exc}") from None
    return entries


def _apply(
    entry: tuple[str, dict[str, Any]], given: dict[str, str], name: str, value: str, where: str
) -> None:
    url, fields = entry
    scheme = url.split(":", 1)[0].lower()
    try:
        if name in ("dir", "out"):
            given[name] = value
        elif name == "checksum":
            algorithm, _, digest = value.partition("=")
            fields["checksum"] = f"{algorithm}:{digest}"
            parse_checksum(fields["checksum"])
        elif name in ("split", "max-connection-per-server"):
            if not value.isdigit() or not 1 <= int(value) <= MAX_CONNECTIONS:
                raise InputError(f"must be a number from 1 to {MAX_CONNECTIONS}")
            # aria2 opens min(split, max-connection-per-server) connections to one server.
            fields["connections"] = min(int(value), fields.get("connections", MAX_CONNECTIONS))
        elif name == "max-download-limit":
            fields["limit_rate"] = parse_rate(value)
        elif name in ("header", "user-agent", "referer"):
            header, value = {"header": value.partition(":")[::2],
                             "user-agent": ("User-Agent", value),
                             "referer": ("Referer", url if value == "*" else value)}[name]
            if not header.strip():
                raise InputError(f"header must look like 'Name: value', not {_cut(value)!r}")
            # header is the one option aria2 lets you repeat: each line adds one.
            fields.setdefault("headers", {})[header.strip()] = value.strip()
        elif name in ("http-user", "ftp-user") and name[:3] == scheme[:3]:
            fields["username"] = value
        elif name in ("http-passwd", "ftp-passwd") and name[:3] == scheme[:3]:
            fields["password"] = value
        elif name == "all-proxy":
            # Empty is aria2's way to say "no proxy" for this file, whatever else names one.
            fields["proxy"] = check_proxy(value) if value else ""
        elif name == "no-netrc":
            fields["netrc"] = value.lower() not in _TRUE
        elif name in ("allow-overwrite", "continue") and value.lower() in _TRUE:
            fields["conflict"] = "overwrite" if name == "allow-overwrite" else "resume"
        else:
            log.debug("input file option %s ignored", name)
    except LadenError as exc:
        raise InputError(f"{where}: {name}: {exc}") from None


def _place(
    url: str, fields: dict[str, Any], given: dict[str, str], default_dir: str | None
) -> None:
    """Turn aria2's `dir` and `out` (which may hold subfolders) into a folder and a name."""
    folder = given.get("dir")
    out = given.get("out", "")
    sub, _, name = out.replace("\\", "/").rpartition("/")
    if sub:
        if os.path.isabs(sub) or ".." in sub.split("/"):
            raise InputError(f"out={_cut(out)!r} for {shown_address(url)} must stay inside the "
                             "download folder")
        folder = os.path.join(folder or default_dir or ".", sub)
    if folder:
        fields["dest"] = os.path.expanduser(folder).rstrip(os.sep) + os.sep
    if name:
        fields["filename"] = name


def _cut(text: str) -> str:
    return text if len(text) <= 60 else text[:60] + "…"


MAX_INPUT_BYTES = 64 * 1024 * 1024
"""The largest input file read, after decompression: about a million addresses."""


def _read_lines(path: str) -> list[str]:
    """The file's lines; bounded, so `-i /dev/zero` or a gzip bomb is refused, not a MemoryError."""
    too_large = f"{path} is larger than {MAX_INPUT_BYTES // 1024 // 1024} MiB: not a list of URLs"
    try:
        if path == "-":
            text = sys.stdin.read(MAX_INPUT_BYTES + 1)
            if len(text) > MAX_INPUT_BYTES:
                raise InputError(too_large)
            return text.splitlines()
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT_BYTES + 1)
        if data[:2] == b"\x1f\x8b":  # aria2 reads gzip-compressed input files too
            data = _gunzip(data, path)
        if len(data) > MAX_INPUT_BYTES:
            raise InputError(too_large)
        return data.decode("utf-8-sig").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file") from None


def _gunzip(data: bytes, path: str) -> bytes:
    """`data` decompressed, stopping one byte past MAX_INPUT_BYTES (the caller refuses that)."""
    out = bytearray()
    while data:
        unpack = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += unpack.decompress(data, MAX_INPUT_BYTES + 1 - len(out))
        except zlib.error:
            raise InputError(f"{path} is not a readable gzip file") from None
        if len(out) > MAX_INPUT_BYTES:
            break  # the caller refuses it; no need to unpack the rest
        if not unpack.eof:
            raise InputError(f"{path} is a gzip file that ends early")
        data = unpack.unused_data.lstrip(b"\x00")  # gzip members may follow, or padding
    return bytes(out)
