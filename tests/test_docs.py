"""The documentation in `docs/` builds in strict mode, offline, and its examples use real names.

The build is the README's command (`mkdocs build --strict -f docs/mkdocs.yml`) into a temporary
folder: a docstring the reference cannot render, a cross-reference to a name that is gone or a
link to a missing page is a warning, and strict mode makes every warning fail the build.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.model_files import safetensors
from servers.faults import Faults
from servers.fixtures import random_bytes
from servers.http_server import FileServer

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = DOCS / "pages"
PUBLIC = ("DownloadManager", "Config", "DownloadOptions", "DownloadInfo", "download", "events",
          "errors", "states")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # Any fetch from the network (an inventory, a theme's asset) would meet a closed port on
    # this machine and fail the build, instead of passing here and breaking offline.
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                 "all_proxy"):
        env[name] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    # Never --quiet: it hides the warnings from the count that strict mode fails on.
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
         "-d", str(site)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )


def _page(site: Path, name: str) -> str:
    return (site / name).read_text(encoding="utf-8")


def test_the_docs_build_in_strict_mode(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = _build(DOCS / "mkdocs.yml", site)
    assert result.returncode == 0, result.stdout + result.stderr
    # The reference is read from the docstrings: a field's attribute docstring, a method's
    # Args section and the error tree of a module docstring are all on their pages.
    config = _page(site, "reference/config.html")
    assert "Connections per download (1 to 32)" in config
    manager = _page(site, "reference/manager.html")
    assert "from_settings" in manager and "settings file" in manager
    assert "transfer_ended" not in manager  # the engine's own hooks stay out
    assert "UnknownDownload" in _page(site, "reference/errors.html")
    assert "Bytes on disk." in _page(site, "reference/info.html")
    assert "StateChanged" in _page(site, "reference/events.html")
    assert "getting-started.html" in _page(site, "index.html")


def test_a_broken_reference_fails_the_build(tmp_path: Path) -> None:
    """The strict build is worth running: a gone name and a wrong docstring fail it."""
    module = tmp_path / "src" / "broken_module.py"
    module.parent.mkdir()
    module.write_text(
        '"""A module whose docstring names a parameter its function does not have."""\n\n\n'
        "def fetch(url: str) -> None:\n"
        '    """Fetch it.\n\n    Args:\n        address: not a parameter of fetch.\n    """\n',
        encoding="utf-8",
    )
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "index.md").write_text(
        "# Broken\n\nSee [a method that is gone][laden.DownloadManager.no_such_method].\n\n"
        "::: broken_module\n",
        encoding="utf-8",
    )
    config = yaml.safe_load((DOCS / "mkdocs.yml").read_text(encoding="utf-8"))
    config["docs_dir"] = str(pages)
    config["nav"] = ["index.md"]
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            python = plugin["mkdocstrings"]["handlers"]["python"]
            python["paths"] = [str(ROOT / "src"), str(module.parent)]
    broken = tmp_path / "mkdocs.yml"
    broken.write_text(yaml.safe_dump(config), encoding="utf-8")

    result = _build(broken, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "no_such_method" in output
    assert "address" in output


def _sections(page: Path) -> list[tuple[str, str]]:
    """(heading, code) of each Python example on `page`, under the heading it sits in."""
    found = []
    heading = ""
    text = page.read_text(encoding="utf-8")
    # A fenced block is taken whole, so a comment line in it is never taken for a heading.
    for match in re.finditer(r"^#+ ([^\n]*)$|^```(\w*)\n(.*?)^```", text, flags=re.S | re.M):
        if match.group(1) is not None:
            heading = match.group(1).strip()
        elif match.group(2) == "python":
            found.append((heading, match.group(3)))
    return found


def _examples() -> list[tuple[str, str]]:
    return [(f"{page.relative_to(DOCS)}: {heading}", code)
            for page in sorted(PAGES.rglob("*.md")) for heading, code in _sections(page)]


RUNNABLE = {
    # The whole programs on the pages, run as written against the local server, one after
    # the other (the later ones need the earlier ones' files), and what they print. Not run:
    # the options example (its proxy is a made-up host) and the async functions that
    # nothing calls.
    "download": ([("getting-started.md", "Download a file")], "saved"),
    "several": ([("getting-started.md", "Several downloads at once")], "a.bin: "),
    "events": ([("getting-started.md", "Events")], "big.iso: done"),
    "verify": ([("getting-started.md", "Download a file"),
                ("getting-started.md", "Verify a finished file")],
               "True no checksum was known; recorded sha256"),
    "repair": ([("getting-started.md", "Download a file"),
                ("getting-started.md", "Verify a finished file"),
                "damage big.iso",
                ("getting-started.md", "Repair only what is damaged")],
               "damaged: ((0, 300000),)\nrepaired: True fetched again: ((0, 300000),)"),
    "callbacks": ([("getting-started.md", "Callbacks for one download")], "big.iso: done"),
    "asyncio": ([("async.md", "Three files at once, with progress")],
                "a.bin done \nb.bin done \nc.bin done \n"),
    "retries": ([("getting-started.md", "Retries and backoff")], "done"),
    "pause": ([("getting-started.md", "Pause, resume, cancel, remove")], ""),
    "settings": ([("settings.md", "In Python")], "16\n5242880\n"),
    "errors": ([("getting-started.md", "Errors")], "unsupported address scheme 'gopher'"),
    # The server's model.safetensors is cut short: the check fails it, and it never takes
    # its final name.
    "model": ([("getting-started.md", "Model files")],
              "checked as safetensors broken\nfailed tensor 'w' ends at byte"),
}


@pytest.mark.parametrize("example", sorted(RUNNABLE))
def test_the_examples_run_as_written(example: str, http_server: FileServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """What a reader copies works: the address becomes the local server's, nothing else."""
    sections, printed = RUNNABLE[example]
    files = {name: random_bytes(300_000, seed) for seed, name in
             enumerate(("big.iso", "a.bin", "b.bin", "c.bin"))}
    for name, data in files.items():
        http_server.add_file(f"/{name}", data)
    model = safetensors()
    http_server.add_file("/model.safetensors", model[:-10])
    if example == "retries":  # its first answer is a 500, which the policy retries
        http_server.set_faults("/a.bin", Faults(status_sequence=[(500, {})]))
    monkeypatch.chdir(tmp_path)
    for step in sections:
        if step == "damage big.iso":  # a disk's bit flip, between two programs
            with open(tmp_path / "downloads" / "big.iso", "r+b") as damaged:
                damaged.seek(1000)
                damaged.write(b"\0")
            continue
        page, heading = step
        [code] = [code for title, code in _sections(PAGES / page) if title == heading]
        code = code.replace("https://example.com/", http_server.base_url + "/")
        exec(compile(code, f"{page}: {heading}", "exec"), {"__name__": "__main__"})
    assert printed in capsys.readouterr().out
    fetched = [name for name in files if (tmp_path / "downloads" / name).exists()]
    if example == "retries":
        answers = [r.status for r in http_server.requests if r.path == "/a.bin"]
        assert answers[0] == 500 and len(answers) > 1
    if example == "pause":  # removed: neither the file nor its partial file stays
        assert not list(tmp_path.glob("downloads/*"))
    if example in ("model", "settings", "errors", "pause"):  # nothing kept, or refused
        assert not fetched and not (tmp_path / "models" / "model.safetensors").exists()
        return
    assert fetched, "the example downloaded nothing"
    for name in fetched:
        assert (tmp_path / "downloads" / name).read_bytes() == files[name]


def test_every_example_is_python_and_imports_what_laden_has() -> None:
    examples = _examples()
    assert len(examples) >= 8
    for where, code in examples:
        tree = compile(code, where, "exec", ast.PyCF_ONLY_AST)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("laden"):
                module = importlib.import_module(node.module or "laden")
                for alias in node.names:
                    assert hasattr(module, alias.name), (
                        f"{where}: 'from {node.module} import {alias.name}': no such name")


def test_the_public_names_import_from_laden_lazily() -> None:
    import laden

    for name in PUBLIC:
        assert name in laden.__all__
        assert getattr(laden, name) is not None
    # `import laden` alone loads none of the engine, only the one line that holds the version:
    # `laden --help` stays fast.
    code = "import sys, laden\nprint(sorted(m for m in sys.modules if m.startswith('laden.')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == "['laden.core', 'laden.core.version']"
