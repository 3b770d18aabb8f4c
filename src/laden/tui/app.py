"""`LadenApp`: the queue, the detail and settings screens, on top of one `DownloadManager`.

The engine runs in its own threads. Its events reach the app as messages (see `bridge`), are
kept in `downloads` and drawn by the screens; every call into the engine that may block
(adding, verifying, removing, pausing a thousand downloads) runs on one worker thread in the
order the keys were pressed, so the keys always answer at once.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen

from ..core.config import Config
from ..core.errors import LadenError, SettingsError
from ..core.options import DownloadOptions
from ..core.printable import printable
from ..core.snapshots import DownloadInfo
from ..core.states import State
from ..engine.manager import DownloadManager, VerifyResult
from ..engine.reruns import FinishedCopy
from ..store import paths, settings
from . import bindings
from .bridge import EngineBridge
from .commands import LadenCommands
from .messages import (
    CommandFailed,
    DownloadAdded,
    DownloadChanged,
    DownloadNotice,
    DownloadProgress,
    DownloadRemoved,
)
from .screens.add_modal import AddModal, AddRequest, UploadRequest
from .screens.confirm_quit import ConfirmQuit
from .screens.confirm_remove import ConfirmRemove, RemoveChoice
from .screens.detail import DetailScreen
from .screens.help import HelpScreen
from .screens.queue import QueueScreen
from .screens.settings import SettingsScreen
from .widgets.header_bar import free_space, summarize

TICK = 0.5
"""Seconds between refreshes of the header (its free space is looked up each time)."""


@dataclass
class CommandDone(Message):
    """An engine call from `run_command` came back; `callback` takes its result."""

    callback: Callable[[Any], None] | None
    result: Any


class LadenApp(App[int]):
    TITLE = "laden"
    CSS_PATH = "laden.tcss"
    COMMANDS = App.COMMANDS | {LadenCommands}
    BINDINGS = bindings.BINDINGS

    def __init__(
        self,
        manager: DownloadManager,
        *,
        urls: Iterable[str] = (),
        settings_problem: str | None = None,
    ) -> None:
        super().__init__()
        self.manager = manager
        self.downloads: dict[int, DownloadInfo] = {}
        """The latest snapshot of every download, updated on the app's thread only."""
        self.settings_problem = settings_problem
        self._urls = list(urls)
        self._bridge = EngineBridge(self)
        self._unsubscribe: Callable[[], None] | None = None
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="laden-ui-command")
        self.queue_screen = QueueScreen()
        self._keys: dict[str, str] = {}

    def get_default_screen(self) -> Screen[Any]:
        return self.queue_screen

    # -- starting and stopping ---------------------------------------------------------------

    def on_mount(self) -> None:
        self._apply_look(self.manager.config)
        # Subscribe before listing, so nothing that happens in between is missed.
        self._unsubscribe = self.manager.subscribe(self._bridge)
        for info in self.manager.list():
            self._show(info)
        self._tick()
        self.set_interval(TICK, self._tick)
        if self.settings_problem:
            self.notify(f"{self.settings_problem}\nUsing the default settings until it is fixed.",
                        title="The settings file is broken", severity="error", timeout=30)
        journal = getattr(self.manager, "journal", None)  # None: a manager without a journal
        if journal is not None and journal.recovered_from:
            self.notify(f"{journal.path} could not be read; it was kept as "
                        f"{journal.recovered_from} and a new journal started.",
                        title="The journal was set aside", severity="warning", timeout=30)
        for url in self._urls:
            self.run_command(partial(self.manager.add_all, url), action=f"add {url}")

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._worker.shutdown(wait=True, cancel_futures=True)
        # Active downloads keep their state and resume by themselves at the next start.
        self.manager.close()

    # -- engine events -----------------------------------------------------------------------

    def on_download_added(self, message: DownloadAdded) -> None:
        self._show_newer(message.info)

    def on_download_progress(self, message: DownloadProgress) -> None:
        tick = message.tick
        known = self.downloads.get(tick.id)
        if known is None:
            return  # removed meanwhile
        if tick.sequence >= known.sequence:
            self._show(tick.applied_to(known))

    def on_download_changed(self, message: DownloadChanged) -> None:
        if message.info.id in self.downloads:  # not removed meanwhile
            self._show_newer(message.info)

    def on_download_removed(self, message: DownloadRemoved) -> None:
        self.downloads.pop(message.download_id, None)
        self.queue_screen.forget(message.download_id)
        screen = self.screen
        if isinstance(screen, DetailScreen) and screen.download_id == message.download_id:
            self.pop_screen()

    def on_download_notice(self, message: DownloadNotice) -> None:
        self.notify(message.text, title=message.title, severity=message.severity,
                    timeout=8 if message.severity == "error" else 4)

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """A toast, as Textual's, but made printable and not read as markup by default: every
        toast of the app goes through here, and most carry a name, an address or a message
        from a server."""
        super().notify(printable(message, newlines=True), title=printable(title),
                       severity=severity, timeout=timeout, markup=markup)

    def on_command_done(self, message: CommandDone) -> None:
        if message.callback is not None:
            message.callback(message.result)

    def on_command_failed(self, message: CommandFailed) -> None:
        self.notify(message.error, title=f"Could not {message.action}", severity="error",
                    timeout=8)

    def _show_newer(self, info: DownloadInfo) -> None:
        """Show `info` unless the snapshot shown is newer: events from several threads can
        arrive out of order, and their numbers say which came first."""
        known = self.downloads.get(info.id)
        if known is None or info.sequence >= known.sequence:
            self._show(info)

    def _show(self, info: DownloadInfo) -> None:
        self.downloads[info.id] = info
        self.queue_screen.show(info)
        for screen in self.screen_stack:
            if isinstance(screen, DetailScreen) and screen.download_id == info.id:
                screen.info = info

    def _tick(self) -> None:
        self.refresh_summary()

    def refresh_summary(self) -> None:
        """The header's counts, and the free space where the selected download is saved."""
        folder = self._selected_folder()
        self.queue_screen.summary = summarize(self.downloads.values(), folder,
                                              free_space(folder))

    def _selected_folder(self) -> str:
        # The folder that download fills, not the default one: downloads go anywhere.
        download_id = self.queue_screen.download_id
        info = self.downloads.get(download_id) if download_id is not None else None
        if info is not None and info.dest:
            return os.path.dirname(info.dest)
        return self.manager.config.download_folder or paths.default_download_dir()

    # -- running engine calls off the app's thread -------------------------------------------

    def run_command(
        self,
        call: Callable[[], Any],
        *,
        action: str,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        """Run `call` on the command thread; `on_done(result)` or `on_error(message)` (or a
        toast) follow on the app's thread."""

        def run() -> None:
            try:
                result = call()
            except LadenError as exc:
                self._report(action, str(exc), on_error)
            except Exception as exc:  # a bug: say so rather than lose the key press silently
                self._report(action, f"{type(exc).__name__}: {exc}", on_error)
            else:
                self.post_message(CommandDone(on_done, result))

        self._worker.submit(run)

    def _report(self, action: str, error: str, on_error: Callable[[str], None] | None) -> None:
        if on_error is None:
            self.post_message(CommandFailed(action, error))
        else:
            self.post_message(CommandDone(on_error, error))

    def add_downloads(
        self,
        request: AddRequest,
        *,
        on_added: Callable[[list[int] | FinishedCopy], None],
        on_error: Callable[[str], None],
    ) -> None:
        def add() -> list[int] | FinishedCopy:
            # Built on the command thread too, so a bad value comes back through on_error.
            options = DownloadOptions(connections=request.connections)
            found = None if request.again else self.manager.find_finished(
                request.url, request.dest, options=options)
            return found or self.manager.add_all(request.url, request.dest, options=options,
                                                 again=request.again)

        self.run_command(add, action=f"add {request.url}", on_done=on_added, on_error=on_error)

    def add_uploads(
        self,
        request: UploadRequest,
        *,
        on_added: Callable[[list[int]], None],
        on_error: Callable[[str], None],
    ) -> None:
        def add() -> list[int]:
            options = DownloadOptions(connections=request.connections)
            with self.manager.adding_many():
                return self.manager.add_uploads([request.local], request.remote,
                                                options=options, conflict=request.conflict,
                                                on_change=request.on_change)

        self.run_command(add, action=f"upload {request.local}", on_done=on_added,
                         on_error=on_error)

    # -- screenshots -------------------------------------------------------------------------

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title == "Screenshot":
                # Textual's own saves into the Downloads folder, among the user's downloads.
                command = command._replace(
                    help=f"Save an SVG picture of the screen in {screenshot_folder()}",
                    callback=lambda: self.set_timer(0.1, self.action_screenshot))
            yield command

    def action_screenshot(self, filename: str | None = None, path: str | None = None) -> None:
        """Save the screen as SVG where Textual's screenshots go: `TEXTUAL_SCREENSHOT_LOCATION`,
        else the working folder (as `save_screenshot` and `textual run --screenshot`)."""
        self.deliver_screenshot(filename, path or screenshot_folder())

    def on_delivery_complete(self, event: events.DeliveryComplete) -> None:
        if event.name == "screenshot":
            # Textual's own toast is markup, which this app's toasts show as typed.
            event.prevent_default()
            where = str(event.path) if event.path is not None else "the browser"
            self.notify(f"Saved to {where}", title="Screenshot")

    def export_screenshot(self, *, title: str | None = None, simplify: bool = False) -> str:
        """Textual's SVG, with its white space kept as written: renderers that follow SVG's
        default strip the spaces that open each run of text (rich writes them as no-break
        spaces), so the header's "1 queued" came out as "1queued"."""
        svg = super().export_screenshot(title=title, simplify=simplify)
        return svg.replace("<svg ", '<svg xml:space="preserve" ', 1)

    # -- settings ----------------------------------------------------------------------------

    def save_settings(self, config: Config) -> str | None:
        """Write and apply new settings; the reason when they could not be written."""
        try:
            path = settings.save(config)
        except (LadenError, OSError) as exc:
            self.notify(str(exc), title="Settings not saved", severity="error", timeout=15)
            return str(exc)
        self.manager.apply_config(config)
        self.settings_problem = None
        self._apply_look(config)
        self.notify(f"Saved to {path}", title="Settings")
        return None

    def _apply_look(self, config: Config) -> None:
        theme = config.extra.get("theme")
        if isinstance(theme, str) and theme in self.available_themes:
            self.theme = theme
        elif theme is not None:
            self.notify(f"There is no theme called {theme!r}; keeping {self.theme}.",
                        severity="warning")
        keymap = config.extra.get("keymap", {})
        if isinstance(keymap, dict) and all(isinstance(v, str) for v in keymap.values()):
            self._keys = {str(k): v for k, v in keymap.items()}
            self.set_keymap(self._keys)
        else:
            self.notify("[keymap] must map action names to keys, e.g. add = \"ctrl+a\".",
                        title="Settings", severity="warning")

    def keys_for(self, action_id: str) -> str:
        return self._keys.get(action_id) or bindings.BY_ID[action_id].key

    def key_display(self, binding_id: str, default: str) -> str:
        """The keys of a binding as the footer shows them ("?, f1"), through the keymap."""
        keys = self._keys.get(binding_id) or default
        return ", ".join(self.get_key_display(Binding(key.strip(), ""))
                         for key in keys.split(",") if key.strip())

    # -- actions -----------------------------------------------------------------------------

    def action_available(self, action: str, screen: Screen[Any]) -> bool:
        spec = bindings.BY_ID.get(action)
        if spec is None:
            return True
        if spec.everywhere:
            return not isinstance(screen, HelpScreen)
        if isinstance(screen, QueueScreen):
            return True
        return isinstance(screen, DetailScreen) and spec.in_details

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The download keys must not fire while a dialog or the settings have the screen.
        return self.action_available(action, self.screen)

    def _selected(self) -> DownloadInfo | None:
        download_id = getattr(self.screen, "download_id", None)
        return self.downloads.get(download_id) if download_id is not None else None

    def _on_selected(self, name: str, call: Callable[[int], Any]) -> None:
        info = self._selected()
        if info is not None:
            self.run_command(partial(call, info.id), action=f"{name} {info.name}")

    def action_add(self) -> None:
        folder = self.manager.config.download_folder or paths.default_download_dir()
        self.push_screen(AddModal(folder, self.manager.config.connections), self._added)

    def _added(self, ids: list[int] | None) -> None:
        if ids:
            self.queue_screen.table.select(ids[0])
            known = [self.downloads.get(i) for i in ids]
            word = "upload" if all(i is not None and i.direction == "upload" for i in known) \
                else "download"
            self.notify(f"{len(ids)} {word}s added" if len(ids) > 1 else
                        f"{word.capitalize()} added")

    def action_pause_resume(self) -> None:
        info = self._selected()
        if info is None:
            return
        if info.state in (State.PAUSED, State.FAILED, State.CANCELLED):
            self.action_resume()
        elif info.state is not State.DONE:
            self.action_pause()

    def action_pause(self) -> None:
        self._on_selected("pause", self.manager.pause)

    def action_resume(self) -> None:
        self._on_selected("resume", self.manager.resume)

    def action_pause_all(self) -> None:
        self.run_command(self.manager.pause_all, action="pause all")

    def action_resume_all(self) -> None:
        self.run_command(self.manager.resume_all, action="resume all")

    def action_move_up(self) -> None:
        self._on_selected("move", lambda i: self.manager.move(i, -1))

    def action_move_down(self) -> None:
        self._on_selected("move", lambda i: self.manager.move(i, 1))

    def action_verify(self) -> None:
        info = self._selected()
        if info is not None:
            self.notify(f"Checking {info.name}…", title="Verify")
            self.run_command(partial(self.manager.verify, info.id),
                             action=f"verify {info.name}", on_done=self._verified)

    def _verified(self, result: VerifyResult) -> None:
        self.notify(result.message, title="Verified" if result.ok else "Verification failed",
                    severity="information" if result.ok else "error")

    def action_remove(self) -> None:
        info = self._selected()
        if info is not None:
            self.push_screen(ConfirmRemove(info), self._remove)

    def _remove(self, choice: RemoveChoice | None) -> None:
        if choice is not None:
            self.run_command(partial(self.manager.remove, choice.download_id, choice.delete_file),
                             action="remove the download")

    def action_details(self) -> None:
        info = self._selected()
        if info is not None and isinstance(self.screen, QueueScreen):
            self.push_screen(DetailScreen(info))

    async def action_quit(self) -> None:
        """Quit; while downloads run, ask first (every way to quit comes here: the key, ctrl+q
        and the palette)."""
        running = sum(1 for info in self.downloads.values() if info.state.is_active)
        if not running:
            self.exit()
        elif not isinstance(self.screen, ConfirmQuit):
            self.push_screen(ConfirmQuit(running), self._quit)

    def _quit(self, confirmed: bool | None) -> None:
        if confirmed:
            self.exit()

    def action_history(self) -> None:
        self.queue_screen.set_show_history(not self.queue_screen.table.show_history)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen(self.manager.config, paths.settings_path(),
                                        self.settings_problem))


def screenshot_folder() -> str:
    """Where the Screenshot command saves: Textual's `TEXTUAL_SCREENSHOT_LOCATION`, else the
    working folder."""
    return os.environ.get("TEXTUAL_SCREENSHOT_LOCATION") or os.getcwd()


def open_app(urls: Iterable[str] = ()) -> LadenApp:
    """The app with its engine; raises `LadenError` when the engine cannot start (for example
    `StateDirBusy`: another laden owns the state folder)."""
    try:
        config, problem = settings.load(), None
    except SettingsError as exc:
        # Never overwrite what the user must fix; run on defaults and say why.
        config, problem = Config(), str(exc)
    manager = DownloadManager(config, resume_interrupted=True)
    return LadenApp(manager, urls=urls, settings_problem=problem)


def run_app(urls: list[str]) -> int:
    """`laden [URL...]`: run the app; the exit code."""
    try:
        app = open_app(urls)
    except LadenError as exc:
        print(f"laden: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        app.run()
    finally:
        app.manager.close()  # a no-op after a normal exit; keeps the journal after a crash
    return app.return_code or 0
