"""All tunables of the engine in one validated, frozen object.

The settings file maps onto `Config` one to one (see `laden.store.settings`), and command-line
flags override single fields with `Config.replace`. Each field's docstring is its help text on
the settings screen and in `laden --help`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .known_sources import SETTINGS_FILE_KEYS
from .printable import printable
from .retry import (
    ERROR_KINDS,
    LONGEST_BACKOFF,
    LONGEST_WAIT,
    RetryPolicy,
    check_attempts,
    check_seconds,
    parse_kinds,
)
from .units import exact_size_text, parse_rate, parse_size

CONFLICT_POLICIES = ("rename", "overwrite", "skip", "resume")
MAX_CONNECTIONS = 32
DIRECT_IO_MODES = ("auto", "on", "off")
SIZE_SETTINGS = ("limit_rate", "min_segment_size", "buffer_size", "lowest_speed")
"""Settings in bytes (or bytes per second) that a user writes as 5M or 512K."""
EXTRA_SETTINGS = frozenset({
    # The app's own (`extra`): its colours and its rebound keys.
    "theme", "keymap",
    # What the sources read from `extra` when a download does not set it (see sources.cloud):
    # those every source reads, and each source's own options (a credential only as the file
    # holding it), as `known_sources` declares them.
    "anonymous", "revision",
    *SETTINGS_FILE_KEYS,
})
"""Keys of the settings file that are not `Config` fields but are known: kept in `extra`."""


@dataclass(frozen=True)
class Config:
    """Every tunable of the engine, checked when built: a wrong value raises
    `errors.InputError` naming the field. Frozen: `replace` makes a changed copy, and
    `DownloadManager.apply_config` puts it in force.

    The settings file maps onto it one to one (`from_mapping`, `to_mapping`); each field's
    docstring is its help text on the settings screen.
    """

    download_dir: str = ""
    """Folder for downloads when no destination is given (empty: your Downloads folder)."""

    connections: int = 8
    """Connections per download (1 to 32). More helps when the server caps each connection."""

    max_active: int = 3
    """Downloads that run at the same time; the rest wait in the queue in order."""

    per_host_connections: int = 16
    """Connections to one host across all downloads, so one server is not flooded."""

    limit_rate: int | None = None
    """Bandwidth limit for all downloads together, in bytes per second (e.g. 5M); empty for none."""

    retries: int = 5
    """Attempts after a network or server error before a download fails."""

    retry_backoff: float = 0.5
    """Seconds before the first retry; each further retry waits up to twice as long."""

    retry_max_backoff: float = 30.0
    """The longest wait between two retries, in seconds, however many came before."""

    max_retry_after: float = 300.0
    """The longest wait a server's Retry-After is honoured for, in seconds; a server asking
    for more is tried again after this long."""

    retry_on: tuple[str, ...] = ERROR_KINDS
    """Errors worth another attempt: timeout, refused, dropped (a connection broken or cut
    short), server-error (5xx), slow-down (429, 503), unresolved (a host name; one retry).
    The others fail at once."""

    conflict: str = "rename"
    """When the file already exists: rename (name.1.ext), overwrite, skip, or resume from it."""

    verify: bool = True
    """Verify checksums the server publishes (Repr-Digest, Content-MD5, cloud checksums)."""

    min_segment_size: int = 1024 * 1024
    """A free connection never splits off a piece smaller than this (bytes)."""

    stall_timeout: float = 30.0
    """Seconds without a byte before a connection is closed and its range reopened."""

    lowest_speed: int = 1024
    """Bytes per second under which a connection counts as stalled, measured over the stall
    timeout (e.g. 1K); it is closed and its range reopened. 0 turns this off."""

    connect_timeout: float = 15.0
    """Seconds to wait for a connection and the response headers."""

    buffer_size: int = 1024 * 1024
    """Bytes read per system call into each connection's reused buffer."""

    checkpoint_interval: float = 1.0
    """Seconds between journal records of the bytes written (a crash of laden loses none)."""

    flush_interval: float = 30.0
    """Seconds between forcing the partial file to disk: after a power cut, at most this much
    is downloaded again."""

    flush_on_finish: bool = False
    """Force a finished file to disk before it takes its final name, so it survives a power
    cut right after the download (curl, wget and aria2c do not; it waits for the disk)."""

    direct_io: str = "auto"
    """Write large downloads straight to the disk, past the page cache: faster where page-cache
    writes are slow, and memory stays free. auto (files of 64 MiB or more on ext4, XFS or
    btrfs), on (wherever the file system allows it) or off."""

    format_check: bool = True
    """Check the structure of model files (.safetensors, .gguf, PyTorch .pt/.pth/.bin, .npz,
    .npy, .onnx) before they take their final name: a file cut short or damaged fails with
    what is wrong. Reads the headers only, never the tensors."""

    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    """Settings the engine does not use itself (theme, keymap): kept so a save round-trips them."""

    def __post_init__(self) -> None:
        _check_int("connections", self.connections, 1, MAX_CONNECTIONS)
        _check_int("max_active", self.max_active, 1, 1000)
        _check_int("per_host_connections", self.per_host_connections, 1, 256)
        check_attempts("retries", self.retries)
        check_seconds("retry_backoff", self.retry_backoff, LONGEST_BACKOFF)
        check_seconds("retry_max_backoff", self.retry_max_backoff, LONGEST_WAIT)
        check_seconds("max_retry_after", self.max_retry_after, LONGEST_WAIT)
        # Frozen: a list or a string of names is kept as the kinds' tuple, in their order.
        object.__setattr__(self, "retry_on", parse_kinds(self.retry_on, "retry_on"))
        _check_int("min_segment_size", self.min_segment_size, 64 * 1024, 1 << 40)
        _check_int("buffer_size", self.buffer_size, 16 * 1024, 64 * 1024 * 1024)
        _check_int("lowest_speed", self.lowest_speed, 0, 1 << 40)
        if self.limit_rate is not None:
            _check_int("limit_rate", self.limit_rate, 1, 1 << 50)
        if self.conflict not in CONFLICT_POLICIES:
            raise InputError(
                f"conflict must be one of {', '.join(CONFLICT_POLICIES)}, not {self.conflict!r}"
            )
        if self.direct_io not in DIRECT_IO_MODES:
            raise InputError(
                f"direct_io must be one of {', '.join(DIRECT_IO_MODES)}, not {self.direct_io!r}"
            )
        if not isinstance(self.verify, bool):
            raise InputError(f"verify must be true or false, not {self.verify!r}")
        if not isinstance(self.flush_on_finish, bool):
            raise InputError(f"flush_on_finish must be true or false, not {self.flush_on_finish!r}")
        if not isinstance(self.format_check, bool):
            raise InputError(f"format_check must be true or false, not {self.format_check!r}")
        for name in ("stall_timeout", "connect_timeout", "checkpoint_interval", "flush_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise InputError(f"{name} must be a positive number of seconds, not {value!r}")
        if not isinstance(self.download_dir, str):
            raise InputError(f"download_dir must be a folder path, not {self.download_dir!r}")

    @property
    def download_folder(self) -> str:
        """`download_dir` as a folder path: `~/Downloads` in the settings file means the home's
        (the setting itself keeps what the user wrote)."""
        return os.path.expanduser(self.download_dir) if self.download_dir else ""

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry settings as the value a download uses (unless it carries its own)."""
        return RetryPolicy(attempts=self.retries, backoff=self.retry_backoff,
                           max_backoff=self.retry_max_backoff,
                           max_retry_after=self.max_retry_after, retry_on=self.retry_on)

    def replace(self, **changes: Any) -> Config:
        """A copy with some fields changed and validated; None values are ignored."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> Config:
        """Build from settings-file values, converting sizes like "5M".

        The app's and the sources' keys (`EXTRA_SETTINGS`) go to `extra`.

        Raises:
            InputError: a value out of range, or a key laden does not know (a typo would
                otherwise be ignored in silence); the message starts with the key.
        """
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        unknown = [key for key in data if key not in known and key not in EXTRA_SETTINGS]
        if unknown:
            raise InputError("; ".join(_unknown(str(key), known) for key in unknown))
        values: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                extra[key] = value
            elif key == "limit_rate":
                try:
                    values[key] = parse_rate(value)
                except InputError as exc:  # name the key, so the settings error finds its line
                    raise InputError(f"limit_rate: {exc}") from None
            elif key in SIZE_SETTINGS:
                values[key] = parse_size(value, what=key)
            else:
                values[key] = value
        return cls(**values, extra=extra)

    def to_mapping(self) -> dict[str, Any]:
        """The values for the settings file (None left out: TOML has no null), sizes in the
        form people write them ("50M", not 52428800) whenever that form is exact."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data.pop("extra")
        data = {k: v for k, v in data.items() if v is not None}
        for name in SIZE_SETTINGS:
            if name in data:
                data[name] = exact_size_text(data[name])
        data["retry_on"] = list(self.retry_on)
        data.update(self.extra)
        return data


def field_help() -> dict[str, str]:
    """Help text for each setting, taken from the attribute docstrings above."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Config))
    helps: dict[str, str] = {}
    body = tree.body[0].body  # type: ignore[attr-defined]
    for node, after in zip(body, body[1:], strict=False):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(after, ast.Expr)
            and isinstance(node.target, ast.Name)
            and isinstance(after.value, ast.Constant)
        ):
            # One paragraph: a docstring's line breaks and indentation are not the help's.
            helps[node.target.id] = " ".join(str(after.value.value).split())
    return helps


def _unknown(key: str, known: set[str]) -> str:
    shown = printable(key if len(key) <= 40 else key[:40] + "…")  # a quoted key holds anything
    import difflib  # only for a mistake: start-up need not load it

    close = difflib.get_close_matches(key, sorted(known | EXTRA_SETTINGS), n=1)
    hint = f", did you mean {close[0]}?" if close else ""
    return f"{shown}: unknown setting{hint}"


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{name} must be a whole number, not {value!r}")
    if not low <= value <= high:
        raise InputError(f"{name} must be between {low} and {high}, not {value}")
