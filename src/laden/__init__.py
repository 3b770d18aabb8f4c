"""laden: a terminal download manager.

`from laden import DownloadManager` gives the engine as a Python API; the command line and the
Textual app are built on the same object. `DownloadManager.from_settings()` starts it with the
values of the settings file, as they do; `DownloadManager()` (or `DownloadManager(Config(...))`)
with the defaults (or the values given) and nothing from the file. `AsyncDownloadManager` is
the same engine for asyncio code: the same methods, awaited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.version import __version__

if TYPE_CHECKING:
    from .core import errors, states
    from .core.config import Config
    from .core.options import DownloadOptions
    from .core.retry import RetryPolicy
    from .core.snapshots import DownloadInfo
    from .engine import events
    from .engine.aio import AsyncDownloadManager
    from .engine.manager import DownloadManager
    from .engine.sharing import download

__all__ = [
    "AsyncDownloadManager",
    "Config",
    "DownloadInfo",
    "DownloadManager",
    "DownloadOptions",
    "RetryPolicy",
    "__version__",
    "download",
    "errors",
    "events",
    "states",
]

_PUBLIC = {
    "DownloadInfo": ("core.snapshots", "DownloadInfo"),
    "DownloadOptions": ("core.options", "DownloadOptions"),
    "RetryPolicy": ("core.retry", "RetryPolicy"),
    "download": ("engine.sharing", "download"),
    "errors": ("core.errors", None),
    "events": ("engine.events", None),
    "states": ("core.states", None),
}
"""The rest of the public API: name -> (module, attribute; None for the module itself)."""


def __getattr__(name: str) -> Any:
    # Imported on first use, so `laden --help` and `import laden` stay fast.
    if name == "AsyncDownloadManager":  # asyncio itself costs 15 ms at start-up
        from .engine.aio import AsyncDownloadManager

        return AsyncDownloadManager
    if name == "DownloadManager":
        from .engine.manager import DownloadManager

        return DownloadManager
    if name == "Config":
        from .core.config import Config

        return Config
    if name in _PUBLIC:
        import importlib

        module_name, attribute = _PUBLIC[name]
        module = importlib.import_module(f".{module_name}", __name__)
        return module if attribute is None else getattr(module, attribute)
    raise AttributeError(name)
