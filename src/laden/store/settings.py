"""The settings file: config.toml, read with tomllib and written with tomli-w.

A missing file means defaults. A broken one is an error naming the file and the line, and is
never overwritten: `save` refuses to replace a file that does not parse. A key laden does not
know is such an error too ("conectionz: unknown setting, did you mean connections?"). A value
`save` leaves unchanged keeps the form the user wrote it in ("1.5M" stays "1.5M"); a changed
size is written as people write sizes ("50M").
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Any

from ..core.config import Config
from ..core.errors import InputError, SettingsError
from . import paths


def load(path: str | None = None) -> Config:
    path = path or paths.settings_path()
    data = read_table(path)
    try:
        return Config.from_mapping(data)
    except InputError as exc:
        raise SettingsError(f"{path}{_line_of(path, str(exc))}: {exc}") from None
    except TypeError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def read_table(path: str) -> dict[str, Any]:
    """The raw TOML table; {} when the file does not exist."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file: {exc}") from None
    import tomllib  # most people have no settings file: start-up does not load the parser

    try:
        with handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the settings file: {exc}") from None


def save(config: Config, path: str | None = None) -> str:
    """Write the settings atomically; returns the path."""
    path = path or paths.settings_path()
    written = read_table(path)  # raises for a broken file: never overwrite what the user must fix
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    import tomli_w

    text = tomli_w.dumps(_as_written(config, written))
    fd, tmp = tempfile.mkstemp(prefix=".config.", suffix=".toml", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _as_written(config: Config, written: dict[str, Any]) -> dict[str, Any]:
    """`config`'s values for the file, each unchanged one in the form the file had it."""
    data = config.to_mapping()
    for key, value in data.items():
        if key not in written or written[key] == value or key in config.extra:
            continue
        try:
            same = getattr(Config.from_mapping({key: written[key]}), key) == getattr(config, key)
        except (InputError, TypeError, ValueError):
            continue  # the file's value was not valid: the new one replaces it
        if same:
            data[key] = written[key]
    return data


def _line_of(path: str, message: str) -> str:
    """", line N" for the key the message names, so the user knows where to look."""
    match = re.match(r"(\w+)", message)
    if not match:
        return ""
    try:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if re.match(rf"\s*{re.escape(match.group(1))}\s*=", line):
                    return f", line {number}"
    except OSError:
        pass
    return ""
