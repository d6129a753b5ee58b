"""The help screen (``?``): every key of the inspector, from the table the README's list follows too."""

from __future__ import annotations

from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("↑ ↓ j k", "move in the list (moving up stops following)"),
    ("PgUp PgDn Home", "a page up or down, the oldest"),
    ("End, f", "follow: keep the newest exchange selected"),
    ("mouse", "click a row to select it, scroll the list, click tabs and tree nodes"),
    ("1 2 3 4", "details tabs: problems, reply, request, replay"),
    ("Enter, Space", "open or close a JSON node (in a body tree)"),
    ("/", "filter: words (type, call, summary, bodies), type:NAME, call:ID, is:problem, is:reply"),
    ("t", "only this exchange's type (again: all types)"),
    ("a", "only this exchange's call (again: all calls)"),
    ("p", "only exchanges with problems (errors, failed auth, contract problems)"),
    ("w", "only exchanges Vapi waits a reply for (↩)"),
    ("x", "clear the filter (it never changes what is forwarded)"),
    ("c", "calls: one row per call; Enter opens its timeline"),
    ("r", "replay the exchange to the app; the Replay tab compares the replies"),
    ("e", "edit the request body in $EDITOR, then replay it"),
    ("y", "copy the body of the tab shown (reply, else request) through the terminal (OSC 52)"),
    ("s", "save the exchange as a fixture file (`vapi-dev trigger --file` sends it again)"),
    ("?", "this help"),
    ("q, Ctrl-C", "quit (with listen --ui: stop the listener, as Ctrl-C does)"),
)


def keys_table() -> Table:
    table = Table(box=None, show_header=False, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        table.add_row(Text(key), Text(what))
    return table


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("vapi-dev inspector — keys", style="bold"))
            yield Static(keys_table())
            yield Static(Text("Escape or ? closes this help.", style="dim"))
