"""Rich styles from a widget's component classes, for text that widgets draw themselves."""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget


def component_style(widget: Widget, name: str) -> Style:
    """The colour and text style of component class `name`, without its background.

    Rich styles cannot carry transparency, so a theme colour such as `$foreground 20%` is taken
    already blended over the widget's background; the background itself is left out so the text
    still sits on zebra stripes and the cursor row.
    """
    blended = widget.get_component_rich_style(name)
    return widget.get_component_rich_style(name, partial=True) + Style(color=blended.color)
