"""Shared test set-up: every test gets its own state, settings and log folders, and no SDK can
reach a real cloud (the environment is isolated before any SDK is imported)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from servers.sdk_env import isolate_sdk_environment  # noqa: E402

isolate_sdk_environment()

from faults import figures  # noqa: E402
from servers.cloud_fixtures import *  # noqa: E402,F403
from servers.fixtures import http_server, random_bytes  # noqa: E402,F401


@pytest.fixture(autouse=True)
def laden_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """Private state, config and log folders for each test, and a download folder."""
    dirs = {name: tmp_path / name for name in ("state", "config", "logs", "downloads")}
    for path in dirs.values():
        path.mkdir()
    monkeypatch.setenv("LADEN_STATE_DIR", str(dirs["state"]))
    monkeypatch.setenv("LADEN_CONFIG_DIR", str(dirs["config"]))
    monkeypatch.setenv("LADEN_LOG_DIR", str(dirs["logs"]))
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    yield dirs


@pytest.fixture(autouse=True)
def laden_logger() -> Iterator[None]:
    """The "laden" logger as each test found it: a command run in the test's process sets it
    up to write to its file and stop propagating (`cli.logs`), which hid a later test's
    records from `caplog` in the same worker."""
    logger = logging.getLogger("laden")
    saved = logger.handlers[:], logger.level, logger.propagate
    yield
    for handler in logger.handlers:
        if handler not in saved[0]:
            handler.close()
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def downloads(laden_dirs: dict[str, Path]) -> Path:
    return laden_dirs["downloads"]


# -- the trust suite's figures, gathered from every xdist worker --------------------------------

def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(_FiguresFromWorkers(), "laden-trust-figures")


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = getattr(session.config, "workeroutput", None)
    if output is not None:  # an xdist worker: its figures go back to the controller
        output["laden_figures"] = dict(figures.FIGURES)
        output["laden_failed"] = list(figures.FAILED_SCENARIOS)
        output["laden_notes"] = list(figures.NOTES)


class _FiguresFromWorkers:
    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {})
        figures.FIGURES.update(output.get("laden_figures", {}))
        figures.FAILED_SCENARIOS.extend(output.get("laden_failed", ()))
        figures.NOTES.extend(n for n in output.get("laden_notes", ()) if n not in figures.NOTES)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = figures.summary_lines()
    if lines:
        terminalreporter.section("laden trust figures")
        for line in lines:
            terminalreporter.write_line(line)
