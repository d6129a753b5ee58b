"""The inspector's actions through its keys: replay to a real local app (and the diff), edit in a fake $EDITOR,
copy (OSC 52, and the fallback message), save a fixture that `trigger --file` sends, and the calls view."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Static

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.exchanges import make_exchange
from tests.ui.conftest import SECRET, fixed, sample_exchanges, settle, tool_reply
from vapi_dev.exchange import Exchange
from vapi_dev.output.bodies import reply_diff
from vapi_dev.redact import MASK, Masker
from vapi_dev.ui.app import InspectorApp
from vapi_dev.ui.feed import Batch
from vapi_dev.vapi.auth import AuthConfig


def replay_text(app: InspectorApp) -> str:
    statics = list(app.details.query("#replay-scroll Static").results(Static))
    return "\n".join(s.content.plain if isinstance(s.content, Text) else str(s.content) for s in statics)


def tool_call_to(url: str, n: int = 1, **fields: Any) -> Exchange:
    """A recorded tool call that went to ``url``/tool and got another answer than the fake app gives now."""
    ex = make_exchange("tool-calls", {"results": [{"toolCallId": "x", "result": "Rainy"}]}, call_id="call_abc")
    return fixed(ex, n, forward_url=f"{url}/tool", **fields)


async def test_r_replays_to_the_app_and_shows_the_diff(fake_app: tuple[str, AppState]) -> None:
    url, state = fake_app
    app = InspectorApp(Masker())
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[tool_call_to(url)]))
        await pilot.pause()
        await pilot.press("r")
        await settle(app, pilot)
        assert state.seen and state.seen[-1]["type"] == "tool-calls"  # it reached the app
        assert app.details.active == "replay"
        text = replay_text(app)
        assert f"replayed ex_test_000001 → {url}/tool" in text
        assert "reply body diff" in text
        assert '-      "result": "Rainy"' in text and '+      "result": "Sunny, 21 C"' in text
        assert "status" in text and "200" in text
        assert "reply contract: ok" in text
        assert "replayed ex_test_000001: 200" in app.notices[-1].text


async def test_replay_with_nothing_listening_says_so() -> None:
    from tests.support.net import free_port

    app = InspectorApp(Masker())
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[tool_call_to(f"http://127.0.0.1:{free_port()}")]))
        await pilot.pause()
        await pilot.press("r")
        await settle(app, pilot)
        assert app.notices[-1].level == "error" and "nothing is listening" in app.notices[-1].text


async def test_replay_to_another_url_resigns_masked_headers(fake_app: tuple[str, AppState]) -> None:
    url, state = fake_app
    ex = tool_call_to("http://127.0.0.1:9", headers=[("Content-Type", "application/json"), ("X-Vapi-Secret", MASK)])
    app = InspectorApp(Masker(), auth=AuthConfig(secret="fresh"), to=url)
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[ex]))
        await pilot.pause()
        await pilot.press("r")
        await settle(app, pilot)
        assert state.seen, app.notices[-1].text
        assert "recorded with x-vapi-secret masked; signed again: x-vapi-secret" in replay_text(app)


def fake_editor(tmp_path: Path, script: str) -> str:
    path = tmp_path / "editor.sh"
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


async def test_e_edits_the_body_in_editor_then_replays(
    fake_app: tuple[str, AppState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake_app
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", fake_editor(tmp_path, "sed -i 's/Paris/Lyon/' \"$1\""))
    app = InspectorApp(Masker())
    ex = fixed(make_exchange("tool-calls", tool_reply(), call_id="call_abc"), 1, forward_url=f"{url}/echo")
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[ex]))
        await pilot.pause()
        await pilot.press("e")
        await settle(app, pilot)
        sent = state.seen[-1]["body"]
        assert b"Lyon" in sent and b"Paris" not in sent
        assert json.loads(sent)["message"]["type"] == "tool-calls"
        assert "reply body diff" in replay_text(app)  # the echo differs from the recorded reply


async def test_e_with_an_editor_that_fails_sends_nothing(
    fake_app: tuple[str, AppState], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, state = fake_app
    monkeypatch.setenv("VISUAL", fake_editor(tmp_path, "exit 3"))
    app = InspectorApp(Masker())
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=[tool_call_to(url)]))
        await pilot.pause()
        await pilot.press("e")
        await settle(app, pilot)
        assert not state.seen
        assert app.notices[-1].text == "the editor exited with status 3; nothing was sent."


async def test_y_copies_the_masked_body_with_osc52(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TERM_PROGRAM", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    app = InspectorApp(Masker([SECRET]))
    written: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        assert app._driver is not None
        monkeypatch.setattr(app._driver, "write", written.append)
        secret_body = {"message": {"type": "status-update", "status": "ended", "note": SECRET, "password": "pw"}}
        app.deliver(Batch(exchanges=[fixed(make_exchange("status-update", {"ok": 1}, payload=secret_body), 1)]))
        await pilot.pause()
        await pilot.press("3", "y")  # the Request tab: its body
        copied = app.copied[-1]
        assert json.loads(copied)["message"]["status"] == "ended"
        assert SECRET not in copied and '"pw"' not in copied
        assert f"\x1b]52;c;{base64.b64encode(copied.encode()).decode()}\a" in written
        assert app.clipboard == copied
        assert "copied the request body of ex_test_000001" in app.notices[-1].text
        await pilot.press("2", "y")
        assert json.loads(app.copied[-1]) == {"ok": 1}
        assert "reply body" in app.notices[-1].text


async def test_y_on_a_terminal_without_osc52_says_where_else_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERM_PROGRAM", "Apple_Terminal")
    app = InspectorApp(Masker())
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        await pilot.press("y")
        notice = app.notices[-1]
        assert notice.level == "warning"
        assert "may not take a copy (OSC 52)" in notice.text and "vapi-dev show ex_test_000006" in notice.text


async def test_s_saves_a_fixture_that_trigger_sends_again(tmp_path: Path) -> None:
    from tests.support.background import app_in_thread

    app = InspectorApp(Masker([SECRET]), save_dir=tmp_path)
    with app_in_thread() as (url, state, _):
        async with app.run_test(size=(120, 40)) as pilot:
            app.deliver(Batch(exchanges=sample_exchanges()))
            await pilot.pause()
            app.event_list.select_id("ex_test_000004")  # the one with secret headers
            await pilot.press("s")
            saved = sorted(tmp_path.glob("*.json"))
            assert [p.name for p in saved] == ["vapi-dev-transcript-ex_test_000004.json"]
            assert f"saved {saved[0]}" in app.notices[-1].text
        text = saved[0].read_text()
        assert SECRET not in text and "tok_9" not in text
        data = json.loads(text)
        assert data["version"] == 1 and data["masked"] is True and len(data["exchanges"]) == 1
        out = run_cli("trigger", "--file", str(saved[0]), "--to", url)
        assert out.returncode == 2 and "were masked on export" in out.stderr  # trigger refuses to send unsigned
        out = run_cli("trigger", "--file", str(saved[0]), "--to", url, "--secret", "fresh", "--bearer", "tok_new")
        assert out.returncode == 0, out.stderr
        assert len(state.seen) == 1 and json.loads(state.seen[0].body)["message"]["type"] == "transcript"
        headers = dict(state.seen[0].headers)
        assert headers["X-Vapi-Secret"] == "fresh" and headers["Authorization"] == "Bearer tok_new"


async def test_c_opens_the_calls_view_and_its_timeline_selects_an_exchange() -> None:
    from vapi_dev.ui.calls import CallsScreen, TimelineScreen

    app = InspectorApp(Masker())
    async with app.run_test(size=(120, 40)) as pilot:
        app.deliver(Batch(exchanges=sample_exchanges()))
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, CallsScreen)
        await pilot.press("p", "r")  # the list's keys do nothing over the calls view
        assert not app.rows.filter.active and not app.workers
        await pilot.press("home", "enter")  # the first call: call_abc
        await pilot.pause()
        assert isinstance(app.screen, TimelineScreen)
        await pilot.press("enter")  # its first entry → that exchange in the list
        await pilot.pause()
        await pilot.pause()
        assert not isinstance(app.screen, (CallsScreen, TimelineScreen))
        assert app.event_list.selected is not None and app.event_list.selected.id == "ex_test_000001"
        assert not app.event_list.following


def test_diff_and_pretty_mask() -> None:
    mask = Masker([SECRET])
    old = json.dumps({"token": "abc", "x": 1}).encode()
    new = json.dumps({"token": "abc", "x": 2, "note": SECRET}).encode()
    lines = reply_diff(old, new, mask)
    assert lines[0] == "--- recorded reply" and '+  "x": 2,' in lines
    assert not any(SECRET in line or "abc" in line for line in lines)
