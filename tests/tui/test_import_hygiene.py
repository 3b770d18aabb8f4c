"""The engine, the sources and the command line work without Textual: importing them must not
pull it in (the TUI is only loaded when the app starts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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
    """The layers of pyproject.toml's import-linter contracts: the faces over the engine over
    the sources and the store over the shared words. import-linter is a test dependency, so it
    sits next to this interpreter; the check never skips."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    assert lint_imports.exists(), f"{lint_imports} is missing: install laden[test]"
    result = subprocess.run([str(lint_imports), "--no-cache"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" not in result.stdout.lower().replace("0 broken", "")
