"""Where laden keeps things, from platformdirs, each overridable for tests and containers."""

from __future__ import annotations

import os

import platformdirs

APP = "laden"


def state_dir() -> str:
    """Session journal and lock: LADEN_STATE_DIR, else the platform's user state folder."""
    return os.environ.get("LADEN_STATE_DIR") or platformdirs.user_state_dir(APP)


def config_dir() -> str:
    """config.toml: LADEN_CONFIG_DIR, else the platform's user config folder."""
    return os.environ.get("LADEN_CONFIG_DIR") or platformdirs.user_config_dir(APP)


def log_dir() -> str:
    return os.environ.get("LADEN_LOG_DIR") or platformdirs.user_log_dir(APP)


def settings_path() -> str:
    return os.path.join(config_dir(), "config.toml")


def default_download_dir() -> str:
    return platformdirs.user_downloads_dir()
