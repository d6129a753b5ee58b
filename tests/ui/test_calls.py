"""The calls view and a call's timeline, driven by key presses in a tiny App (vapi_dev/ui/calls.py)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import DataTable, OptionList, Static

from tests.ui.calls_support import (
    ASSISTANT_ID,
    CALLER_ID,
    T0,
    TRANSFER_ID,
    CallsApp,
    busy_calls,
    call_exchanges,
    one,
)
from vapi_dev.redact import MASK, Masker
from vapi_dev.ui.calls import CallsScreen, TimelineScreen, duration_text

SIZE = (100, 30)


def shown(widget: Widget) -> str:
    """What a line-API widget (DataTable, OptionList) shows on screen now, one line per row."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def head(screen: Any, selector: str) -> str:
    content = screen.query_one(selector, Static).content
    assert isinstance(content, Text)  # text from the network never reaches a widget as markup
    return content.plain


async def until(pilot: Pilot[Any], done: Any, tries: int = 50) -> None:
    """Let the app run until ``done()`` holds (bounded: 50 × 0.1 s)."""
    for _ in range(tries):
        if done():
            return
        await pilot.pause(0.1)
    raise AssertionError("the screen did not change")


def test_durations() -> None:
    assert [duration_text(s) for s in (None, -1, 0, 42.4, 99, 3723)] == ["", "", "0 s", "42 s", "1:39", "1:02:03"]


async def test_one_row_per_call_newest_highlighted() -> None:
    app = CallsApp(busy_calls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        assert [r.call_id for r in screen.rows] == [ASSISTANT_ID, TRANSFER_ID, CALLER_ID]
        table = screen.query_one(DataTable)
        assert table.row_count == 3 and table.cursor_row == 2  # the newest call, at the bottom
        lines = shown(table).splitlines()
        assert lines[0].split() == ["call", "start", "duration", "events", "problems", "cost", "ended", "reason"]
        assert lines[1].split() == ["9b1deb4d", "12:00:00", "1:39", "8", "0", "$0.12", "customer-ended-call"]
        assert lines[2].split() == ["6ec0bd7f", "12:02:00", "1:10", "7", "✗", "1", "$0.31", "assistant-forwarded-call"]
        assert lines[3].split() == ["1b9d6bcd", "12:05:00", "5", "s", "6", "0", "—"]  # in progress
        assert head(screen, "#calls-head") == "Calls: 3"


async def test_enter_opens_the_timeline_and_enter_on_an_entry_chooses_its_exchange() -> None:
    exchanges = busy_calls()
    app = CallsApp(exchanges)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("up", "enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TimelineScreen) and screen.call_id == TRANSFER_ID
        listing = screen.query_one(OptionList)
        assert listing.highlighted == 0 and listing.option_count == len(screen.entries) == 7
        assert head(screen, "#timeline-head").startswith(f"call {TRANSFER_ID} · started 12:02:00 · 1:10 · 7 events")
        text = shown(listing)
        assert "assistant Hi, this is the weather line." in " ".join(text.split())
        assert "get_weather(city=Paris) → app failed (500): upstream down" in text
        assert "destination requested → +15555550111" in text
        await pilot.press("down", "down", "down", "enter")  # the failed tool call
        await pilot.pause()
        tool = next(ex for ex in exchanges if ex.call_id == TRANSFER_ID and ex.message_type == "tool-calls")
        assert app.chosen == [tool.id]
        assert not isinstance(app.screen, (CallsScreen, TimelineScreen))  # both closed: the app selects it


async def test_escape_goes_back_and_closes() -> None:
    app = CallsApp(busy_calls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("home", "enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen) and app.screen.call_id == ASSISTANT_ID
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, CallsScreen) and app.chosen == []
        await pilot.press("escape")
        await pilot.pause()
        assert app.chosen == [None] and not isinstance(app.screen, CallsScreen)


async def test_c_closes_and_q_still_quits() -> None:
    app = CallsApp(busy_calls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("c")
        await pilot.pause()
        assert app.chosen == [None]
    app = CallsApp(busy_calls())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("c")  # from a timeline, back to the calls
        await pilot.pause()
        assert isinstance(app.screen, CallsScreen) and app.chosen == []
        await pilot.press("enter")
        await pilot.pause()
        await pilot.press("q")  # the app's binding: neither screen takes the key for itself
        await pilot.pause()
        assert app.return_code == 0


async def test_the_mouse_opens_a_call_and_chooses_an_entry() -> None:
    exchanges = busy_calls()
    app = CallsApp(exchanges)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.click("#calls", offset=(2, 1))  # the first call's row (under the headings): highlighted
        await pilot.pause()
        assert isinstance(app.screen, CallsScreen) and app.screen.highlighted_call() == ASSISTANT_ID
        await pilot.click("#calls", offset=(2, 1))  # clicked again: opened
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen) and app.screen.call_id == ASSISTANT_ID
        assert app.screen.entries[3].kind == "user"
        await pilot.click("#timeline", offset=(30, 3))  # the fourth entry: what the user said
        await pilot.pause()
        assert app.chosen == [exchanges[3].id]


async def test_new_calls_and_new_events_show_up() -> None:
    app = CallsApp(call_exchanges(ASSISTANT_ID, ended=False))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CallsScreen)
        table = screen.query_one(DataTable)
        app.exchanges += call_exchanges(CALLER_ID, T0 + 300)
        await until(pilot, lambda: table.row_count == 2)  # the screen's own refresh
        assert table.cursor_row == 0  # the highlight stays where it was
        app.exchanges += [
            one("status-update", ASSISTANT_ID, T0 + 60, status="ended", endedReason="silence-timed-out"),
        ]
        screen.refresh_calls()
        assert screen.rows[0].ended_reason == "silence-timed-out" and screen.rows[0].events == 7
        assert "silence-timed-out" in shown(table).splitlines()[1]
        await pilot.press("enter")
        await pilot.pause()
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen) and len(timeline.entries) == 7
        app.exchanges.append(one("end-of-call-report", ASSISTANT_ID, T0 + 61, endedReason="silence-timed-out"))
        listing = timeline.query_one(OptionList)
        await until(pilot, lambda: listing.option_count == 8)
        assert timeline.entries[-1].kind == "summary"
        assert "silence-timed-out · 99 s · $0.12" in " ".join(shown(listing).split())


async def test_a_partial_transcript_replaced_in_place_keeps_the_highlight() -> None:
    app = CallsApp([one("status-update", "c1", T0), one("transcript", "c1", T0 + 1, transcriptType="partial")])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen)
        await pilot.press("down")
        app.exchanges.append(one("transcript", "c1", T0 + 2, transcript="What's the weather in Oslo?"))
        timeline.refresh_timeline()
        await pilot.pause()
        listing = timeline.query_one(OptionList)
        assert [e.text for e in timeline.entries] == ["in-progress", "What's the weather in Oslo?"]
        assert listing.option_count == 2 and listing.highlighted == 1
        assert "Paris" not in shown(listing)


async def test_hostile_text_is_shown_literally_and_secrets_masked() -> None:
    secret = "s3cr3t-value-9876"
    hostile = f"\x1b[2J\x1b]0;owned\x07[bold red]boom[/] {secret}"
    exchanges = [
        one("transcript", "c1", T0, transcript=hostile),
        one("status-update", "c1", T0 + 1, status="ended", endedReason=f"[link=x]{secret}"),
    ]
    app = CallsApp(exchanges, Masker([secret]))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.pause()
        row = shown(app.screen.query_one(DataTable)).splitlines()[1]
        assert f"[link=x]{MASK}" in row and secret not in row
        await pilot.press("enter")
        await pilot.pause()
        text = shown(app.screen.query_one(OptionList))
        assert f"\\x1b[2J\\x1b]0;owned\\x07[bold red]boom[/] {MASK}" in text
        assert secret not in text and "\x1b" not in text
        assert f"ended ([link=x]{MASK})" in text
        assert secret not in head(app.screen, "#timeline-head")


async def test_a_call_whose_exchanges_are_gone() -> None:
    hostile_id = "\x1b[2Jcall-[b]1[/b]"
    app = CallsApp([one("status-update", hostile_id, T0)])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("enter")
        await pilot.pause()
        timeline = app.screen
        assert isinstance(timeline, TimelineScreen) and len(timeline.entries) == 1
        assert head(timeline, "#timeline-head").startswith("call \\x1b[2Jcall-[b]1[/b] · started 12:00:00")
        app.exchanges.clear()  # the app let them go (it holds a bounded number)
        timeline.refresh_timeline()
        await pilot.pause()
        assert timeline.entries == [] and timeline.query_one(OptionList).option_count == 0
        assert head(timeline, "#timeline-head") == "no exchanges of call \\x1b[2Jcall-[b]1[/b] are held any more"


async def test_no_calls_yet() -> None:
    plain = one("status-update", "c1", T0)
    plain.call_id = None
    app = CallsApp([plain])
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert head(app.screen, "#calls-head") == "No calls yet: events with a call id show here."
        await pilot.press("enter")  # nothing to open
        await pilot.pause()
        assert isinstance(app.screen, CallsScreen)


# -- snapshots (tests/ui/__snapshots__/test_calls/; `pytest --snapshot-update` writes them again) -----------


def test_calls_view_80x24(snap_compare: Any) -> None:
    assert snap_compare(CallsApp(busy_calls()), terminal_size=(80, 24))


def test_calls_view_120x40(snap_compare: Any) -> None:
    assert snap_compare(CallsApp(busy_calls()), terminal_size=(120, 40))


def test_timeline_80x24(snap_compare: Any) -> None:
    assert snap_compare(CallsApp(busy_calls()), terminal_size=(80, 24), press=["up", "enter", "down", "down"])


def test_timeline_120x40(snap_compare: Any) -> None:
    assert snap_compare(CallsApp(busy_calls()), terminal_size=(120, 40), press=["home", "enter"])
