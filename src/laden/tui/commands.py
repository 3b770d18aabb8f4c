"""Every action of the app in the command palette (ctrl+p), with its key and what it does."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual.binding import Binding
from textual.command import DiscoveryHit, Hit, Hits, Provider

from .bindings import ACTIONS, Action

if TYPE_CHECKING:
    from .app import LadenApp


class LadenCommands(Provider):
    @property
    def _app(self) -> LadenApp:
        return cast("LadenApp", self.app)

    def _available(self) -> list[Action]:
        # `self.screen` is the screen the palette was opened from, not the palette itself.
        return [a for a in ACTIONS if self._app.action_available(a.id, self.screen)]

    async def discover(self) -> Hits:
        for action in self._available():
            yield DiscoveryHit(action.help, partial(self._app.run_action, action.id),
                               help=self._key(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._available():
            score = max(matcher.match(action.help), matcher.match(action.description))
            if score > 0:
                yield Hit(score, matcher.highlight(action.help),
                          partial(self._app.run_action, action.id), help=self._key(action))

    def _key(self, action: Action) -> str:
        first = self._app.keys_for(action.id).split(",")[0].strip()
        return f"key: {self.app.get_key_display(Binding(first, action.id))}" if first else ""
