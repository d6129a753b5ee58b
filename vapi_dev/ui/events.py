"""The event list: one row per exchange, the stream's columns, newest at the bottom, virtualised.

Only the rows on screen are rendered (the Line API), each from a cache of its Text, so 10,000 rows or 20,000
cost what a screenful costs; adding exchanges grows the virtual height and, in follow mode, moves the cursor
to the newest. Scrolling up or moving the cursor up stops following; End or ``f`` resumes.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widget import Widget

from vapi_dev.exchange import Exchange
from vapi_dev.output.lines import exchange_line
from vapi_dev.ui.filters import problem_mark
from vapi_dev.ui.model import Rows

LINE_CACHE = 512  # rendered rows kept (a few screens: scrolling back and forth renders nothing again)


class EventList(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    EventList { height: 1fr; scrollbar-size-vertical: 1; overflow-x: hidden; }
    EventList > .event-list--cursor { background: $accent 40%; }
    EventList:focus > .event-list--cursor { background: $accent; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"event-list--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "move(-1)", "Up", show=False),
        Binding("down,j", "move(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First", show=False),
        Binding("end,G", "follow", "Follow", show=False),
    ]

    class Selected(Message):
        """The cursor is on another exchange (``by_user``: a key or a click, not follow mode)."""

        def __init__(self, exchange: Exchange | None, by_user: bool) -> None:
            super().__init__()
            self.exchange = exchange
            self.by_user = by_user

    def __init__(self, rows: Rows, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.rows = rows
        self.cursor = -1  # index into rows.shown; -1: nothing
        self.following = True
        self._cache: dict[tuple[int, int, bool], Strip] = {}  # (id(exchange), width, cursor) → row
        self._selected: Exchange | None = None

    # -- what is shown --------------------------------------------------------------------------

    @property
    def selected(self) -> Exchange | None:
        shown = self.rows.shown
        return shown[self.cursor] if 0 <= self.cursor < len(shown) else None

    def rows_changed(self, *, older: int = 0, redraw: bool = False) -> None:
        """The model grew (``older`` rows put in front) or changed: resize, follow, keep the selection."""
        shown = self.rows.shown
        self._set_rows(len(shown))
        if redraw:
            self._cache.clear()
        if self.following:
            self._set_cursor(len(shown) - 1, by_user=False)
            self.scroll_to(y=max(0, len(shown) - self.size.height), animate=False, force=True)
        else:
            if older:
                self.scroll_to(y=self.scroll_y + older, animate=False, force=True)
            self._keep_selected()
        self.refresh()

    def _set_rows(self, count: int) -> None:
        """The virtual height: a new layout only when the scrollbar comes or goes (it narrows the rows), since
        a layout per batch of events costs more than everything else the list does under a flood."""
        size = Size(self.size.width, count)
        if size == self.virtual_size:
            return
        had = self.show_vertical_scrollbar
        self.set_reactive(Widget.virtual_size, size)
        self._scroll_update(size)  # what Textual does for a size change without a layout
        if self.show_vertical_scrollbar != had:
            self.refresh(layout=True)

    def _keep_selected(self) -> None:
        """After a filter or a trim, the cursor stays on the same exchange (or the nearest still shown)."""
        sel = self._selected
        shown = self.rows.shown
        if sel is not None:
            for i in range(len(shown) - 1, -1, -1):
                if shown[i] is sel or shown[i].id == sel.id:
                    self._set_cursor(i, by_user=False)
                    return
        self._set_cursor(min(max(self.cursor, 0), len(shown) - 1), by_user=False)

    def select_id(self, exchange_id: str) -> bool:
        """Put the cursor on exchange ``exchange_id`` (following stops); False when it is not shown."""
        for i in range(len(self.rows.shown) - 1, -1, -1):
            if self.rows.shown[i].id == exchange_id:
                self.following = False
                self._set_cursor(i, by_user=True)
                return True
        return False

    def _set_cursor(self, index: int, *, by_user: bool) -> None:
        shown = self.rows.shown
        index = min(max(index, -1 if not shown else 0), len(shown) - 1)
        old = self.cursor
        self.cursor = index
        ex = self.selected
        if old != index:
            for row in (old, index):
                if row >= 0:
                    self.refresh_lines(row)  # (ScrollView's: rows of the whole list, the scroll taken off)
        if by_user:
            self._scroll_to_cursor()
        if ex is not self._selected:
            self._selected = ex
            self.post_message(self.Selected(ex, by_user))

    def _scroll_to_cursor(self) -> None:
        height = self.size.height
        top = int(self.scroll_y)
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False, force=True)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False, force=True)

    # -- keys and the mouse --------------------------------------------------------------------

    def action_move(self, delta: int) -> None:
        last = len(self.rows.shown) - 1
        self.following = delta > 0 and self.cursor + delta >= last  # down past the newest follows again
        self._set_cursor(self.cursor + delta, by_user=True)

    def action_page(self, delta: int) -> None:
        self.action_move(delta * max(1, self.size.height - 1))

    def action_first(self) -> None:
        self.following = False
        self._set_cursor(0, by_user=True)

    def action_follow(self) -> None:
        self.following = True
        self.rows_changed()

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y
        if 0 <= index < len(self.rows.shown):
            self.following = index == len(self.rows.shown) - 1
            self._set_cursor(index, by_user=True)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.following = False

    # -- rendering -----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        index = int(self.scroll_y) + y
        shown = self.rows.shown
        if not 0 <= index < len(shown):
            return Strip.blank(width, self.rich_style)
        ex = shown[index]
        at_cursor = index == self.cursor
        key = (id(ex), width, at_cursor)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(ex, width, at_cursor)
            if len(self._cache) >= LINE_CACHE:
                self._cache.clear()
            self._cache[key] = strip
        return strip

    def _render_row(self, ex: Exchange, width: int, at_cursor: bool) -> Strip:
        mark, style = problem_mark(ex)
        line = Text(mark, style=style, end="")
        line.append(" ")
        line.append_text(exchange_line(ex, self.rows.mask, max(width - 2, 10)))
        base = self.rich_style
        segments = [Segment(s.text, s.style) for s in line.render(self.app.console) if s.text != "\n"]
        segments = list(Segment.apply_style(segments, base))
        if at_cursor:  # the cursor's background over the row's colours
            cursor = Style(bgcolor=self.get_component_rich_style("event-list--cursor").bgcolor)
            return Strip(Segment.apply_style(segments, post_style=cursor)).crop_extend(0, width, base + cursor)
        return Strip(segments).crop_extend(0, width, base).simplify()

    def on_resize(self, event: events.Resize) -> None:
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows.shown))  # resized: a layout anyway
        if self.following:
            self.rows_changed()
