"""The inspector driven by keys (App.run_test): the list, follow mode, the details pane, filters, help, quit."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from tests.support.exchanges import make_exchange
from tests.ui.conftest import HOSTILE, SECRET, fixed, sample_exchanges, screen_text
from vapi_dev.redact import MASK, Masker
from vapi_dev.ui.app import InspectorApp
from vapi_dev.ui.bars import TextBar
from vapi_dev.ui.details import BodyTree, Details
from vapi_dev.ui.feed import Batch
from vapi_dev.ui.help import KEYS, HelpScreen
from vapi_dev.vapi.samples import sample


def app_with(exchanges: list, **kwargs: object) -> InspectorApp:  # type: ignore[type-arg]
    return InspectorApp(Masker([SECRET]), **kwargs)  # type: ignore[arg-type]


def pane_text(app: InspectorApp, tab: str) -> str:
    """Everything the Static widgets of one details tab hold, as plain text."""
    parts = []
    for static in app.query_one(Details).query(f"#{tab}-scroll Static").results(Static):
        if not static.display:
            continue
        content = static.content
        parts.append(content.plain if isinstance(content, Text) else str(content))
    return "\n".join(parts)


async def test_follow_mode_stops_when_moving_up_and_resumes_with_end() -> None:
    app = app_with([])
    async with app.run_test(size=(100, 30)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        events = app.event_list
        assert len(events.rows.shown) == 6
        assert events.selected is not None and events.selected.id == "ex_test_000006"  # the newest
        await pilot.press("up", "up")
        assert not events.following
        assert events.selected.id == "ex_test_000004"
        assert "paused" in screen_text(app)
        app.deliver(Batch(exchanges=[fixed(make_exchange("status-update", {}), 7)]))
        await pilot.pause()
        assert events.selected.id == "ex_test_000004"  # paused: the cursor stays
        await pilot.press("end")
        assert events.following and events.selected.id == "ex_test_000007"
        app.deliver(Batch(exchanges=[fixed(make_exchange("status-update", {}), 8)]))
        await pilot.pause()
        assert events.selected.id == "ex_test_000008"  # following: the newest
        await pilot.press("home")
        assert events.selected.id == "ex_test_000001" and not events.following
        await pilot.press("f")
        assert events.following and events.selected.id == "ex_test_000008"


async def test_click_selects_a_row_and_the_wheel_stops_following() -> None:
    app = app_with([])
    async with app.run_test(size=(100, 30)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        await pilot.click("#events", offset=(5, 1))  # the second row
        await pilot.pause()
        assert app.event_list.selected is not None and app.event_list.selected.id == "ex_test_000002"
        assert not app.event_list.following
        assert app.details.exchange is app.event_list.selected


async def test_rows_show_the_stream_columns_and_marks() -> None:
    app = app_with([])
    async with app.run_test(size=(120, 30)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        lines = screen_text(app).splitlines()
        tool = next(line for line in lines if "tool-calls" in line)
        assert "12:00:01" in tool and "call_abc" in tool and "↩" in tool and "200" in tool and "42" in tool
        assert "get_weather" in tool  # the summary
        bad = next(line for line in lines if "assistant-request" in line)
        assert bad.lstrip().startswith("✗")  # the problem mark
        auth = next(line for line in lines if "end-of-call-report" in line)
        assert "auth✗" in auth and auth.lstrip().startswith("✗")
        assert any("GET /health" in line for line in lines)


async def test_details_show_problems_first_then_reply_and_request() -> None:
    app = app_with([])
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        assert app.event_list.select_id("ex_test_000003")
        await pilot.pause()
        details = app.details
        assert details.active == "problems"  # problems first
        head = details.query_one("#head", TextBar).text
        assert "assistant-request" in head.plain and "call_xyz" in head.plain
        assert "took 6900 ms of 7.5 s" in head.plain and "92%" in head.plain  # against the deadline
        assert "the reply names no assistant" in pane_text(app, "problems")
        assert pane_text(app, "reply").strip() == ""  # a tab is filled when it is opened
        await pilot.press("2")
        assert "reply 200" in pane_text(app, "reply")
        tree = details.query_one("#reply-tree", BodyTree)
        assert "oops" in str(tree.root.children[0].label)
        await pilot.press("3")
        assert details.active == "request"
        assert "POST /" in pane_text(app, "request")
        await pilot.press("up")  # an exchange without problems: the reply, not the empty problems tab
        await pilot.pause()
        await pilot.press("1")
        assert details.active == "problems"
        await pilot.press("down", "down")
        await pilot.pause()
        assert app.event_list.selected is not None and app.event_list.selected.id == "ex_test_000004"
        assert details.active == "reply"


async def test_headers_and_secrets_are_masked_in_the_details() -> None:
    app = app_with([])
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        app.event_list.select_id("ex_test_000004")
        await pilot.press("3")
        text = pane_text(app, "request")
        assert "X-Vapi-Secret: " + MASK in text
        assert SECRET not in text and "tok_9" not in text
        assert SECRET not in screen_text(app)


async def test_hostile_bodies_and_types_are_shown_literally() -> None:
    payload = sample("transcript", HOSTILE, transcript=HOSTILE, role="user", transcriptType="final")
    ex = fixed(make_exchange("transcript", {"results": HOSTILE}, payload=payload), 1)
    plain = fixed(make_exchange(None, None, method="POST", path="/x", raw=HOSTILE.encode(), body=HOSTILE.encode()), 2)
    app = app_with([])
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[ex, plain]))
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert "\x1b" not in shown and "\x07" not in shown
        row = next(line for line in shown.splitlines() if "transcript" in line)
        assert "\\x1b]0;pwned\\x07\\x1b[2J[bold red]loud[/bold" in row  # the summary: escaped, markup as text
        assert "\\x1b]0;pwne" in row  # the call id column
        await pilot.press("3")
        assert "\\x1b]0;pwned\\x07" in pane_text(app, "request")  # the plain body, selected: the newest
        app.event_list.select_id(ex.id)
        await pilot.pause()
        head = app.details.query_one("#head", TextBar).text
        assert "\\x1b]0;pwned" in head.plain
        tree = app.query_one("#request-tree", BodyTree)
        message = tree.root.children[0]
        labels = [str(n.label) for n in message.children]
        assert any("\\x1b]0;pwned\\x07" in label and "[bold red]" in label for label in labels)
        assert "\x1b" not in screen_text(app)


async def test_filters_by_text_type_call_problems_and_reply_needed() -> None:
    app = app_with([])
    async with app.run_test(size=(120, 30)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        shown = lambda: [ex.id[-1] for ex in app.rows.shown]  # noqa: E731
        await pilot.press("slash")
        await pilot.press(*"sunny", "enter")
        assert shown() == ["1"]  # the tool reply's body
        assert "filter sunny" in screen_text(app)
        await pilot.press("x")
        assert shown() == list("123456")
        await pilot.press("p")
        assert shown() == ["3", "6"]  # the contract problem, the failed auth
        await pilot.press("p", "w")
        assert shown() == ["1", "3"]  # tool-calls and assistant-request wait for a reply
        await pilot.press("w")
        app.event_list.select_id("ex_test_000002")
        await pilot.press("t")
        assert shown() == ["2"]
        await pilot.press("t", "a")
        assert shown() == ["1", "2", "6"]  # call_abc
        await pilot.press("a", "slash")
        await pilot.press(*"type:transcript call:call_x", "enter")
        assert shown() == ["4"]
        await pilot.press("slash", "ctrl+a", "ctrl+k")
        await pilot.press(*"is:problem call:call_x", "enter")
        assert shown() == ["3"]
        assert app.event_list.selected is not None and app.event_list.selected.id == "ex_test_000003"
        app.deliver(Batch(exchanges=[fixed(make_exchange("tool-calls", {}, call_id="call_xyz"), 9)]))
        await pilot.pause()
        assert shown() == ["3"]  # a new exchange the filter hides stays hidden (and is held)
        assert len(app.rows.all) == 7


async def test_help_lists_every_key_and_closes() -> None:
    app = app_with([])
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = screen_text(app)
        for key, _ in KEYS:
            assert key in text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)


async def test_q_quits() -> None:
    app = app_with([])
    async with app.run_test() as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_memory_is_bounded_and_the_list_keeps_up() -> None:
    app = InspectorApp(Masker(), max_rows=100)
    async with app.run_test(size=(100, 30)) as pilot:
        for start in range(0, 300, 50):
            app.deliver(
                Batch(exchanges=[fixed(make_exchange("status-update", {}), n) for n in range(start, start + 50)])
            )
        await pilot.pause()
        assert len(app.rows.all) <= 100 and app.rows.dropped >= 200
        assert app.event_list.selected is not None and app.event_list.selected.id == "ex_test_000299"
        assert "ex_test_000299" in app.details.query_one("#head", TextBar).text.plain
