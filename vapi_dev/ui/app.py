"""The inspector: the event list over the details pane, a status line and the last notice, and the keys.

It reads exchanges from one source (feed.py): the listener's Bus when ``listen --ui`` runs it in the
listener's own event loop, or the journal file for ``vapi-dev ui``. It holds what it shows in memory,
bounded (model.py); the keys act on the selected exchange (actions.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.widgets import Footer, Input

from vapi_dev.exchange import Exchange, Notice
from vapi_dev.output.lines import NOTICE_STYLE, printable
from vapi_dev.redact import Masker
from vapi_dev.ui import keys
from vapi_dev.ui.bars import TextBar
from vapi_dev.ui.details import Details
from vapi_dev.ui.events import EventList
from vapi_dev.ui.feed import FLOOD_BATCH, Batch, JournalFollower, UiSink
from vapi_dev.ui.filters import Filter, parse, type_name
from vapi_dev.ui.help import HelpScreen
from vapi_dev.ui.model import Rows
from vapi_dev.vapi.auth import AuthConfig

NOTICES_KEPT = 200
DETAILS_EVERY_S = 0.2  # in follow mode, the details pane follows the newest exchange at most this often
FLOOD_DETAILS_S = 1.0  # … and this often under a flood (a batch of FLOOD_BATCH or more)
LISTENERS_EVERY_S = 2.0  # how often `vapi-dev ui` looks whether a listener runs
EVERYWHERE = frozenset({"quit", "help"})  # the app's actions that work over the calls view and the help too


class InspectorApp(App[None]):
    TITLE = "vapi-dev inspector"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $panel; color: $text; padding: 0 1; }
    #events { height: 2fr; min-height: 3; border-bottom: solid $panel-lighten-2; }
    #details { height: 3fr; }
    #filter { height: 1; border: none; padding: 0 1; display: none; }
    #filter.open { display: block; }
    #notice { height: 1; padding: 0 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "follow", "Follow"),
        Binding("c", "calls", "Calls"),
        Binding("r", "replay", "Replay"),
        Binding("e", "edit", "Edit+replay"),
        Binding("y", "copy", "Copy"),
        Binding("s", "save", "Save"),
        Binding("t", "only_type", "Type", show=False),
        Binding("a", "only_call", "Call", show=False),
        Binding("p", "only_problems", "Problems", show=False),
        Binding("w", "only_reply", "Reply-needed", show=False),
        Binding("x", "clear_filter", "Clear filter", show=False),
        Binding("1", "tab('problems')", "Problems tab", show=False),
        Binding("2", "tab('reply')", "Reply tab", show=False),
        Binding("3", "tab('request')", "Request tab", show=False),
        Binding("4", "tab('replay')", "Replay tab", show=False),
        Binding("escape", "close_filter", "Close", show=False),
    ]

    def __init__(
        self,
        mask: Masker,
        *,
        auth: AuthConfig | None = None,
        to: str | None = None,
        sink: UiSink | None = None,
        journal: Path | None = None,
        journal_masked: bool = True,
        listeners: Callable[[], str | None] | None = None,
        save_dir: Path | None = None,
        replay_timeout: float = 30.0,
        max_rows: int | None = None,
    ) -> None:
        super().__init__()
        self.animation_level = "none"  # a key's answer is drawn at once, not over the next 300 ms
        self.mask = mask
        self.auth = auth or AuthConfig()
        self.to = to
        self.sink = sink
        self.journal_path = journal
        self.journal_masked = journal_masked
        self.listeners = listeners
        self.save_dir = save_dir or Path.cwd()
        self.replay_timeout = replay_timeout
        self.rows = Rows(mask) if max_rows is None else Rows(mask, max_rows=max_rows)
        self.notices: deque[Notice] = deque(maxlen=NOTICES_KEPT)
        self.source = "listen: starting…" if sink is not None else f"journal {journal}" if journal else ""
        self.listener_state: str | None = None
        self.copied: list[str] = []  # what `y` put on the clipboard (tests and the status line read it)
        self.follower: JournalFollower | None = None
        self._details_timer: Any = None
        self._raw_journal: Any = None
        self._flood = False  # the last batch was a flood's
        self.serving_done = False  # listen --ui: the listener stopped (before the app was up, perhaps)

    # -- layout and sources --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield TextBar(id="status")
        yield EventList(self.rows, id="events")
        yield Details(self.mask, id="details")
        yield Input(placeholder="filter: words, type:NAME, call:ID, is:problem, is:reply (Enter)", id="filter")
        yield TextBar(id="notice")
        yield Footer()

    @property
    def exchanges(self) -> list[Exchange]:
        """Every exchange held, oldest first (what the calls view reads)."""
        return self.rows.all

    @property
    def event_list(self) -> EventList:
        return self.query_one(EventList)

    @property
    def details(self) -> Details:
        return self.query_one(Details)

    def on_mount(self) -> None:
        if self.serving_done:  # the listener stopped while the app started: leave once it is up
            self.call_after_refresh(self.exit)
            return
        self.event_list.focus()
        self._update_status()
        if self.sink is not None:
            self.sink.attach(self.deliver)
        if self.journal_path is not None:
            loop = asyncio.get_running_loop()

            def from_thread(batch: Batch) -> None:
                with contextlib.suppress(RuntimeError):  # the app (its loop) has ended
                    loop.call_soon_threadsafe(self.deliver, batch)

            self.follower = JournalFollower(self.journal_path, from_thread, masked=self.journal_masked)
            self.run_worker(self.follower.run, thread=True, name="journal follower", exit_on_error=False)
        if self.listeners is not None:
            self._check_listeners()
            self.set_interval(LISTENERS_EVERY_S, self._check_listeners)

    def on_unmount(self) -> None:
        if self.sink is not None:
            self.sink.detach()
        if self.follower is not None:
            self.follower.stop.set()
        if self._raw_journal is not None:
            with contextlib.suppress(Exception):
                self._raw_journal.close()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Over another screen (calls, timeline, help) only ? and q work: the other keys act on the list."""
        return len(self.screen_stack) == 1 or action in EVERYWHERE

    def _check_listeners(self) -> None:
        assert self.listeners is not None
        state = self.listeners()
        if state != self.listener_state:
            self.listener_state = state
            self._update_status()

    def deliver(self, batch: Batch) -> None:
        """Take a source's batch (on the app's loop): exchanges, older rows, notices, a new status."""
        events = self.event_list
        if batch.reset:
            self.rows.clear()
            events.rows_changed(redraw=True)
        if batch.status is not None:
            self.source = batch.status
        self._flood = len(batch.exchanges) >= FLOOD_BATCH
        older = self.rows.add_older(batch.older) if batch.older else 0
        appended, changed = self.rows.add(batch.exchanges) if batch.exchanges else (0, False)
        if older or appended or changed or batch.reset:
            events.rows_changed(older=older, redraw=changed)
        for notice in batch.notices:
            self.notice(notice)
        self._update_status()

    # -- the lines around the list ---------------------------------------------------------------

    def notice(self, notice: Notice) -> None:
        self.notices.append(notice)
        text = Text(printable(notice.text, None), style=NOTICE_STYLE.get(notice.level, ""), no_wrap=True)
        text.truncate(max(self.size.width - 2, 10), overflow="ellipsis")
        self.query_one("#notice", TextBar).set(text)

    def say(self, text: str, level: Literal["info", "warning", "error"] = "info") -> None:
        self.notice(Notice(level, text))

    def _update_status(self) -> None:
        rows = self.rows
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(f"{len(rows.all)} exchanges", style="bold")
        if rows.filter.active:
            t.append(f" · {len(rows.shown)} shown · filter {rows.filter.describe()}", style="yellow")
        t.append(" · following" if self.event_list.following else " · paused (End/f follows)", style="dim")
        if self.listener_state:  # before the journal's path, which is long
            t.append(f" │ {printable(self.listener_state, None)}")
        if self.source:
            t.append(f" │ {printable(self.source, None)}", style="dim" if self.listener_state else "")
        self.query_one("#status", TextBar).set(t)

    # -- selection and details ---------------------------------------------------------------------

    def on_event_list_selected(self, message: EventList.Selected) -> None:
        if message.by_user or self.details.exchange is None:
            self._show_details()
        elif self._details_timer is None:
            self._details_timer = self.set_timer(
                FLOOD_DETAILS_S if self._flood else DETAILS_EVERY_S, self._show_details
            )
        self._update_status()

    def _show_details(self) -> None:
        self._details_timer = None
        try:
            details, events = self.details, self.event_list
        except NoMatches:  # the timer fired while the app shuts down: its widgets are gone
            return
        details.show(events.selected)

    def select(self, exchange_id: str | None) -> None:
        """Select ``exchange_id`` in the list (what the calls view hands back); a filter hiding it is cleared."""
        if exchange_id is None:
            return
        if not self.event_list.select_id(exchange_id) and self.rows.get(exchange_id) is not None:
            self._set_filter(Filter())
            self.event_list.select_id(exchange_id)

    # -- filters -------------------------------------------------------------------------------

    def _set_filter(self, flt: Filter) -> None:
        self.rows.set_filter(flt)
        self.event_list.rows_changed(redraw=True)
        self._update_status()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = self.rows.filter.describe()
        box.add_class("open")
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._set_filter(parse(event.value))
        self.action_close_filter()

    def action_close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.has_class("open"):
            box.remove_class("open")
            self.event_list.focus()

    def _toggle(self, name: str, value: str | bool | None) -> None:
        self._set_filter(self.rows.filter.toggled(name, value))

    def action_only_type(self) -> None:
        ex = self.event_list.selected
        self._toggle("type", type_name(ex) if ex else None)

    def action_only_call(self) -> None:
        ex = self.event_list.selected
        if ex is not None and not ex.call_id and self.rows.filter.call is None:
            self.say("this exchange belongs to no call", "warning")
            return
        self._toggle("call", ex.call_id if ex else None)

    def action_only_problems(self) -> None:
        self._toggle("problems", True)

    def action_only_reply(self) -> None:
        self._toggle("reply_needed", True)

    def action_clear_filter(self) -> None:
        self._set_filter(Filter())

    # -- other keys ------------------------------------------------------------------------------

    def action_follow(self) -> None:
        self.event_list.action_follow()
        self._update_status()

    def action_tab(self, name: str) -> None:
        self.details.switch(name)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_calls(self) -> None:
        from vapi_dev.ui.calls import CallsScreen

        self.push_screen(CallsScreen(lambda: self.rows.all, self.mask), callback=self.select)

    def raw(self, ex: Exchange) -> Exchange:
        """The exchange as recorded (the journal's raw row: the exact bytes replay sends), or ``ex`` itself."""
        if self.journal_path is None:
            return ex
        from vapi_dev.journal.store import Journal

        if self._raw_journal is None:
            self._raw_journal = Journal(self.journal_path, create=False)
        found: Exchange | None = self._raw_journal.get(ex.id, masked=False)
        return found or ex

    def action_replay(self) -> None:
        keys.replay(self)

    def action_edit(self) -> None:
        keys.edit(self)

    def action_copy(self) -> None:
        keys.copy(self)

    def action_save(self) -> None:
        keys.save(self)
