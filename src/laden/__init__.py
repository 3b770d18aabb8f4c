"""laden: a terminal download manager.

`from laden import DownloadManager` gives the engine as a Python API; the command line and the
Textual app are built on the same object. `DownloadManager.from_settings()` starts it with the
values of the settings file, as they do; `DownloadManager()` (or `DownloadManager(Config(...))`)
with the defaults (or the values given) and nothing from the file. `AsyncDownloadManager` is
the same engine for asyncio code: the same methods, awaited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .engine import errors, events, states
    from .engine.aio import AsyncDownloadManager
    from .engine.config import Config
    from .engine.info import DownloadInfo
    from .engine.manager import DownloadManager
    from .engine.options import DownloadOptions
    from .engine.retry import RetryPolicy

__all__ = [
    "AsyncDownloadManager",
    "Config",
    "DownloadInfo",
    "DownloadManager",
    "DownloadOptions",
    "RetryPolicy",
    "__version__",
    "errors",
    "events",
    "states",
]

_PUBLIC = {
    "DownloadInfo": ("engine.info", "DownloadInfo"),
    "DownloadOptions": ("engine.options", "DownloadOptions"),
    "RetryPolicy": ("engine.retry", "RetryPolicy"),
    "errors": ("engine.errors", None),
    "events": ("engine.events", None),
    "states": ("engine.states", None),
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
        from .engine.config import Config

        return Config
    if name in _PUBLIC:
        import importlib

        module_name, attribute = _PUBLIC[name]
        module = importlib.import_module(f".{module_name}", __name__)
        return module if attribute is None else getattr(module, attribute)
    raise AttributeError(name)
