"""laden: a terminal download manager.

`from laden import DownloadManager` gives the engine as a Python API; the command line and the
Textual app are built on the same object. `DownloadManager.from_settings()` starts it with the
values of the settings file, as they do; `DownloadManager()` (or `DownloadManager(Config(...))`)
with the defaults (or the values given) and nothing from the file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .engine.config import Config
    from .engine.manager import DownloadManager

__all__ = ["Config", "DownloadManager", "__version__"]


def __getattr__(name: str) -> Any:
    # Imported on first use, so `laden --help` and `import laden` stay fast.
    if name == "DownloadManager":
        from .engine.manager import DownloadManager

        return DownloadManager
    if name == "Config":
        from .engine.config import Config

        return Config
    raise AttributeError(name)
