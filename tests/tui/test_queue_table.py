"""The queue table on its own: rows in queue order whichever way they arrive."""

from __future__ import annotations

from dataclasses import replace

import pytest
from textual.app import App, ComposeResult

from laden.core.states import State
from laden.tui.widgets.queue_table import QueueTable

from .still_manager import _info

pytestmark = pytest.mark.anyio


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield QueueTable()


def _order(table: QueueTable) -> list[str | None]:
    return [table.coordinate_to_cell_key((row, 0)).row_key.value
            for row in range(table.row_count)]


async def test_rows_keep_queue_order_as_they_arrive_and_move() -> None:
    """A row behind the last one is appended; one added or moved ahead of it sorts the table."""
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(QueueTable)
        first, third, second = (_info(n, f"f{n}.bin", State.QUEUED, 10, 0) for n in (1, 3, 2))
        for info in (first, third, second):
            table.add_download(info)
        await pilot.pause()
        assert _order(table) == ["1", "2", "3"]
        table.update_download(replace(third, position=0.5))
        await pilot.pause()
        assert _order(table) == ["3", "1", "2"]
        table.add_download(_info(4, "f4.bin", State.QUEUED, 10, 0))
        await pilot.pause()
        assert _order(table) == ["3", "1", "2", "4"]
