"""TextBar: a fixed-height line of text (the status line, the last notice, the details header).

Unlike Static, setting its text never asks for a new layout (its size does not depend on the text), so the
bars can change several times a second under a flood of events for the cost of repainting themselves.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TextBar(Widget):
    DEFAULT_CSS = "TextBar { height: 1; }"

    def __init__(self, text: Text | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._text = text or Text()

    @property
    def text(self) -> Text:
        return self._text

    def set(self, text: Text) -> None:
        if text.plain == self._text.plain and text.spans == self._text.spans and text.style == self._text.style:
            return
        self._text = text
        self.refresh()

    def render(self) -> Text:
        return self._text
