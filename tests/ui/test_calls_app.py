"""The calls view through the real inspector: `trigger call`-like exchanges reach the app as the listener's
Bus hands them over (UiSink), `c` opens the calls view, Enter a call's timeline, Enter on an entry selects
that exchange in the event list."""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from tests.ui.calls_support import ASSISTANT_ID, CALLER_ID, T0, busy_calls, call_exchanges
from vapi_dev.exchange import Exchange, Finished
from vapi_dev.redact import Masker
from vapi_dev.ui.app import InspectorApp
from vapi_dev.ui.calls import CallsScreen, TimelineScreen
from vapi_dev.ui.feed import UiSink
from vapi_dev.ui.help import HelpScreen

SIZE = (120, 40)


async def until(pilot: Pilot[Any], done: Any, tries: int = 50) -> None:
    """Let the app run until ``done()`` holds (bounded: 50 × 0.1 s)."""
    for _ in range(tries):
        if done():
            return
        await pilot.pause(0.1)
    raise AssertionError("the app did not get there")


def emit(sink: UiSink, exchanges: list[Exchange]) -> None:
    for ex in exchanges:
        sink.emit(Finished(ex))


async def test_a_call_s_entry_selects_its_exchange_in_the_event_list() -> None:
    sink = UiSink()
    app = InspectorApp(Masker(), sink=sink)
    exchanges = busy_calls()
    async with app.run_test(size=SIZE) as pilot:
        emit(sink, exchanges)
        await until(pilot, lambda: len(app.exchanges) == len(exchanges))
        assert app.event_list.selected is exchanges[-1]  # following: the newest
        await pilot.press("c")
        await pilot.pause()
        calls = app.screen
        assert isinstance(calls, CallsScreen)
        assert [r.call_id for r in calls.rows] == [ASSISTANT_ID, *(r.call_id for r in calls.rows[1:2]), CALLER_ID]
        await pilot.press("home", "enter")
        await pilot.pause()
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen) and timeline.call_id == ASSISTANT_ID
        tool = next(i for i, e in enumerate(timeline.entries) if e.kind == "tool")
        await pilot.press(*["down"] * tool, "enter")
        await pilot.pause()
        chosen = timeline.entries[tool].exchange_id
        assert not isinstance(app.screen, (CallsScreen, TimelineScreen))
        selected = app.event_list.selected
        assert selected is not None and selected.id == chosen and selected.message_type == "tool-calls"
        assert selected.call_id == ASSISTANT_ID


async def test_the_calls_view_follows_the_listener_and_app_keys_leave_it_alone() -> None:
    sink = UiSink()
    app = InspectorApp(Masker(), sink=sink)
    async with app.run_test(size=SIZE) as pilot:
        emit(sink, call_exchanges(ASSISTANT_ID, ended=False))
        await until(pilot, lambda: len(app.exchanges) == 6)
        await pilot.press("c")
        await pilot.pause()
        calls = app.screen
        assert isinstance(calls, CallsScreen) and len(calls.rows) == 1
        emit(sink, call_exchanges(CALLER_ID, T0 + 300))  # the listener goes on while the calls view is open
        await until(pilot, lambda: len(calls.rows) == 2)
        assert calls.rows[1].events == 8 and calls.rows[1].ended_reason == "customer-ended-call"
        await pilot.press("p", "w", "x", "f", "1")  # the event list's keys: they act on it, not on this screen
        await pilot.pause()
        assert app.screen is calls
        await pilot.press("question_mark")  # the app's help, over the calls view
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is calls
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("c")  # from a timeline: back to the calls, not a second calls view
        await pilot.pause()
        assert app.screen is calls
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, (CallsScreen, TimelineScreen))
        assert app.event_list.selected is not None and app.event_list.selected.call_id == CALLER_ID  # unchanged
