"""The engine, the sources and the command line work without Textual: importing them must not
pull it in (the TUI is only loaded when the app starts)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_the_core_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "import laden.engine.manager, laden.cli, laden.sources.http, laden.store.settings\n"
        "leaked = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')\n"
        "                or m.startswith('laden.tui'))\n"
        "print(','.join(leaked))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == ""


def test_import_contracts_hold() -> None:
    lint_imports = shutil.which("lint-imports")
    if lint_imports is None:
        pytest.skip("import-linter is not installed (pip install import-linter)")
    result = subprocess.run([lint_imports], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout and "0 broken" in result.stdout
