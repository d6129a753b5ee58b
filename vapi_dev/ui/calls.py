"""The calls view (one row per call) and a call's timeline, as Textual screens over the inspector's exchanges.

Both read the exchanges through ``source`` (the app's list, newest last) and look again every REFRESH_S, so a
call in progress grows on screen; they rebuild only when what they show has changed. Every text from the
network reaches a widget as a ``rich.text.Text`` of masked, ``printable`` text: never parsed as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from vapi_dev.exchange import Exchange
from vapi_dev.output.lines import CATEGORY_STYLE, TIME_STYLE, call_style, clock, latency_style, printable, short_call
from vapi_dev.redact import Masker
from vapi_dev.ui.timeline import CallRow, Entry, call_rows, exchanges_of, timeline
from vapi_dev.vapi.messages import type_info

REFRESH_S = 0.5  # how often both screens look for new exchanges
FULL_EVERY = 4  # and every this many looks, they read everything again even when nothing seems added
Source = Callable[[], Sequence[Exchange]]

KINDS = {  # an entry's kind → its label and style in the timeline
    "user": ("user", "bold green"),
    "assistant": ("assistant", "bold cyan"),
    "tool": ("tool", CATEGORY_STYLE["reply"]),
    "status": ("status", CATEGORY_STYLE["lifecycle"]),
    "transfer": ("transfer", "bold yellow"),
    "summary": ("■ ended", "bold blue"),
    "event": ("event", "dim"),
}
LABEL_WIDTH = 9
# the calls view's columns, by key; the ended reason, the one of no fixed width, last
COLUMNS = ("call", "start", "duration", "events", "problems", "cost", "ended")
HEADINGS = {"ended": "ended reason"}  # where a column's heading is not its key
REASON_SHOWN = 40  # characters of an ended reason in its cell


def duration_text(seconds: float | None) -> str:
    """42 s, 1:39, 1:02:03; '' when unknown."""
    if seconds is None or seconds < 0:
        return ""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _signature(exchanges: Sequence[Exchange]) -> tuple[Any, ...]:
    """Changes when exchanges are added at either end, or the newest one is completed (cheap to compute)."""
    if not exchanges:
        return (0,)
    first, last = exchanges[0], exchanges[-1]
    return (len(exchanges), first.id, last.id, last.status, last.finished, len(last.problems))


def _problems_cell(n: int) -> Text:
    return Text(f"✗ {n}", style="bold red") if n else Text("0", style="dim")


def call_cells(row: CallRow, mask: Masker) -> tuple[Text, ...]:
    """The cells of one row of the calls view (every text from the network masked and printable)."""
    reason = printable(mask.text(row.ended_reason), REASON_SHOWN) if row.ended_reason else "—"
    return (
        Text(printable(short_call(mask.text(row.call_id))), style=call_style(row.call_id)),
        Text(clock(row.started_at), style=TIME_STYLE),
        Text(duration_text(row.duration_s)),
        Text(str(row.events)),
        _problems_cell(row.problems),
        Text(f"${row.cost:.2f}" if row.cost is not None else ""),
        Text(reason, style="" if row.ended_reason else "dim"),
    )


def call_header(row: CallRow, mask: Masker) -> Text:
    """One line about a call: its whole id, start, duration, events, problems, ended reason, cost."""
    head = Text.assemble(("call ", "bold"), (printable(mask.text(row.call_id), 80), call_style(row.call_id)))
    parts = [f"started {clock(row.started_at)}", duration_text(row.duration_s), f"{row.events} events"]
    if row.ended_reason:
        parts.append(printable(mask.text(row.ended_reason), REASON_SHOWN))
    if row.cost is not None:
        parts.append(f"${row.cost:.2f}")
    head.append(" · " + " · ".join(p for p in parts if p))
    if row.problems:
        head.append(f" · ✗ {row.problems} with problems", style="bold red")
    return head


def entry_text(entry: Entry, ex: Exchange | None = None) -> Text:
    """An entry's text as the stream would show it (a problem marked, the latency coloured against the
    deadline), its detail on the line beneath."""
    body = Text()
    if entry.problem:
        body.append("✗ ", style="bold red")
    alarm = entry.kind == "event" and ex is not None and type_info(ex.message_type).category == "error"  # hang …
    body.append(printable(entry.text, None), style=CATEGORY_STYLE["error"] if alarm else "")
    if entry.latency_ms is not None:
        body.append(f"  {entry.latency_ms:.0f} ms", style=latency_style(ex) if ex is not None else "")
    if entry.detail:
        style = "red" if entry.problem else "" if entry.kind == "summary" else "dim"
        body.append("\n")
        body.append(printable(entry.detail, None), style=style)
    return body


def entry_row(entry: Entry, ex: Exchange | None = None) -> Table:
    """One timeline entry: its time, what it is, and its text, which wraps under itself (a hanging indent)."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(width=8, no_wrap=True)
    grid.add_column(width=LABEL_WIDTH, no_wrap=True)
    grid.add_column(ratio=1, overflow="fold")
    name, style = KINDS.get(entry.kind, (entry.kind, ""))
    grid.add_row(Text(clock(entry.at), style=TIME_STYLE), Text(name, style=style), entry_text(entry, ex))
    return grid


class _CallTable(DataTable[Text]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Timeline"),
        Binding("home", "first", "First call", show=False),
        Binding("end", "last", "Last call", show=False),
    ]

    def action_first(self) -> None:
        self.move_cursor(row=0)

    def action_last(self) -> None:
        self.move_cursor(row=self.row_count - 1)


class _EntryList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "select", "Show exchange")]


class _Watching(Screen[str | None]):
    """A screen over ``source`` that looks again every REFRESH_S: at once when exchanges were added (or the
    newest completed), and every FULL_EVERY looks anyway, for an older exchange completed in place."""

    def __init__(self, source: Source, mask: Masker) -> None:
        super().__init__()
        self._source = source
        self._mask = mask
        self._seen: tuple[Any, ...] | None = None
        self._looks = 0

    def _watch(self) -> None:
        """Show what there is, and look again every REFRESH_S (called by on_mount: Textual calls every class's
        handler of a message itself, so a base class's on_mount would run twice if a subclass called it)."""
        self.reread()
        self.set_interval(REFRESH_S, self._look)

    def _look(self) -> None:
        self._looks += 1
        if self._looks % FULL_EVERY == 0 or _signature(self._source()) != self._seen:
            self.reread()

    def _read(self) -> Sequence[Exchange]:
        exchanges = self._source()
        self._seen = _signature(exchanges)
        return exchanges

    def reread(self) -> None:
        raise NotImplementedError


class TimelineScreen(_Watching):
    """The timeline of one call; Enter on an entry dismisses with its exchange id, Escape with None."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,c", "close", "Back", key_display="esc/c")]
    DEFAULT_CSS = """
    TimelineScreen #timeline-head { height: auto; padding: 0 1; background: $boost; }
    TimelineScreen #timeline { height: 1fr; border: none; }
    """

    def __init__(self, call_id: str, source: Source, mask: Masker) -> None:
        super().__init__(source, mask)
        self.call_id = call_id
        self.entries: list[Entry] = []

    def compose(self) -> ComposeResult:
        yield Static(id="timeline-head")
        yield _EntryList(id="timeline")
        yield Footer()

    def on_mount(self) -> None:
        self._watch()
        listing = self.query_one(_EntryList)
        if listing.option_count:
            listing.highlighted = 0

    def reread(self) -> None:
        self.refresh_timeline()

    def refresh_timeline(self) -> None:
        """Read the call's exchanges again and show what changed."""
        exchanges = exchanges_of(self.call_id, self._read())
        by_id = {ex.id: ex for ex in exchanges}
        rows = call_rows(exchanges)
        head = self.query_one("#timeline-head", Static)
        gone = Text(f"no exchanges of call {printable(self._mask.text(self.call_id), 80)} are held any more")
        head.update(call_header(rows[0], self._mask) if rows else gone)
        entries = timeline(exchanges, self._mask)
        if entries == self.entries:
            return
        listing = self.query_one(_EntryList)
        old = self.entries
        self.entries = entries
        if entries[: len(old)] == old:  # the call went on: only new entries to add
            listing.add_options(Option(entry_row(e, by_id.get(e.exchange_id))) for e in entries[len(old) :])
            return
        at = listing.highlighted
        listing.set_options(Option(entry_row(e, by_id.get(e.exchange_id))) for e in entries)
        if entries:
            listing.highlighted = min(at or 0, len(entries) - 1)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self.entries):
            self.dismiss(self.entries[event.option_index].exchange_id)

    def action_close(self) -> None:
        self.dismiss(None)


class CallsScreen(_Watching):
    """One row per call; Enter opens the highlighted call's timeline; Escape or ``c`` closes with None, and
    an exchange chosen in a timeline closes this screen with its id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,c", "close", "Back", key_display="esc/c"),
    ]
    DEFAULT_CSS = """
    CallsScreen #calls-head { height: 1; padding: 0 1; background: $boost; }
    CallsScreen #calls { height: 1fr; }
    """

    def __init__(self, source: Source, mask: Masker) -> None:
        super().__init__(source, mask)
        self.rows: list[CallRow] = []

    def compose(self) -> ComposeResult:
        yield Static(id="calls-head")
        yield _CallTable(id="calls", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(_CallTable)
        for key in COLUMNS:
            table.add_column(HEADINGS.get(key, key), key=key)
        self._watch()
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)  # the newest call

    def reread(self) -> None:
        self.refresh_calls()

    def refresh_calls(self) -> None:
        """Read the exchanges again and show what changed: new calls at the bottom, changed rows in place."""
        rows = call_rows(self._read())
        head = self.query_one("#calls-head", Static)
        head.update(Text(f"Calls: {len(rows)}" if rows else "No calls yet: events with a call id show here."))
        if rows == self.rows:
            return
        table = self.query_one(_CallTable)
        old = self.rows
        self.rows = rows
        if [r.call_id for r in rows[: len(old)]] == [r.call_id for r in old]:
            for before, now in zip(old, rows, strict=False):
                if before != now:
                    for key, cell in zip(COLUMNS, call_cells(now, self._mask), strict=True):
                        table.update_cell(now.call_id, key, cell, update_width=True)
            for now in rows[len(old) :]:
                table.add_row(*call_cells(now, self._mask), key=now.call_id)
            return
        current = self.highlighted_call()
        table.clear()
        for now in rows:
            table.add_row(*call_cells(now, self._mask), key=now.call_id)
        ids = [r.call_id for r in rows]
        if current in ids:
            table.move_cursor(row=ids.index(current))

    def highlighted_call(self) -> str | None:
        table = self.query_one(_CallTable)
        if not self.rows or not 0 <= table.cursor_row < len(self.rows):
            return None
        return self.rows[table.cursor_row].call_id

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        call_id = event.row_key.value
        if call_id is not None:
            self.app.push_screen(TimelineScreen(call_id, self._source, self._mask), callback=self._chosen)

    def _chosen(self, exchange_id: str | None) -> None:
        if exchange_id is not None:
            self.dismiss(exchange_id)

    def action_close(self) -> None:
        self.dismiss(None)
