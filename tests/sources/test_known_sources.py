"""Each source is declared once (`core.known_sources`): the registry, the command line, the
settings file and manifests are made from those declarations, and agree with the sources."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from laden.core.config import Config
from laden.core.known_sources import KNOWN_SOURCES, SETTINGS_FILE_KEYS, KnownSource
from laden.manifest.addresses import CONNECTION_FIELDS, OBJECT_STORES
from laden.manifest.validation import TYPES
from laden.sources.registry import SourceRegistry

SOURCES = Path(importlib.import_module("laden.sources").__file__ or "").parent
SHARED_SETTINGS = {"anonymous", "revision", "glob", "include", "exclude"}
"""What every source (or every listing) reads, declared by no single source."""


@pytest.mark.parametrize("known", KNOWN_SOURCES, ids=lambda known: known.name)
def test_each_declaration_names_the_source_that_declares_it(known: KnownSource) -> None:
    module, _, name = known.code.partition(":")
    cls = getattr(importlib.import_module(module), name)
    assert cls.known is known
    assert (cls.name, cls.schemes) == (known.name, known.schemes)
    registry = SourceRegistry()
    try:
        for scheme in known.schemes:
            assert isinstance(registry.for_url(f"{scheme}://host/a/b.bin"), cls)
    finally:
        registry.close()


def test_names_schemes_and_options_are_each_declared_once() -> None:
    names = [known.name for known in KNOWN_SOURCES]
    schemes = [scheme for known in KNOWN_SOURCES for scheme in known.schemes]
    keys = [option.key for known in KNOWN_SOURCES for option in known.options]
    for values in (names, schemes, keys):
        assert len(values) == len(set(values)), values


def test_the_options_a_source_reads_are_its_declared_ones() -> None:
    """The keys each module passes to `cloud.setting`, `secret` and `flag`."""
    read = re.compile(r"cloud\.(?:setting|secret|flag)\(\s*options,\s*[\w.]+,\s*\"(\w+)\"")
    declared = {option.key for known in KNOWN_SOURCES for option in known.options}
    for module in ("s3", "gcs", "azure", "hf"):
        keys = set(read.findall((SOURCES / f"{module}.py").read_text()))
        assert keys, module
        assert keys - SHARED_SETTINGS <= declared, (module, keys - SHARED_SETTINGS - declared)


def test_the_command_line_the_settings_file_and_manifests_are_made_from_them() -> None:
    shown = subprocess.run([sys.executable, "-m", "laden", "get", "--help"], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    help_text = " ".join(shown.split())
    for known in KNOWN_SOURCES:
        for option in known.options:
            if option.flag is not None:
                assert f"{option.flag} {option.metavar}" in help_text
                assert " ".join(option.help.split()) in help_text
            if option.in_settings_file:
                assert Config.from_mapping({option.key: "x"}).extra == {option.key: "x"}
            else:
                assert option.key not in SETTINGS_FILE_KEYS
        if known.manifest_type:
            assert known.manifest_type in TYPES
            fields = CONNECTION_FIELDS[known.manifest_type]
            assert {f.key for f in fields.values()} == {
                o.key for o in known.options if o.manifest}
            assert (known.manifest_type in OBJECT_STORES) == (known.containers is not None)


def test_a_web_download_loads_no_other_source() -> None:
    code = (
        "import sys\n"
        "from laden.sources.registry import SourceRegistry\n"
        "import laden.cli.commands\n"
        "SourceRegistry().for_url('https://example.com/a.bin')\n"
        "print(sorted(m for m in sys.modules if m.startswith('laden.sources.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    loaded = set(ast.literal_eval(result.stdout))
    assert "laden.sources.http" in loaded
    assert not loaded & {f"laden.sources.{m}" for m in ("s3", "gcs", "azure", "hf", "ftp")}
