"""The inspector's test helpers: a fixed set of exchanges (ids and times fixed, so screens and snapshots are the
same everywhere), what a screen shows as text, and waiting for the app's workers."""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest
from rich.console import Console
from textual.app import App

from tests.support.exchanges import make_exchange
from vapi_dev.exchange import AuthResult, Exchange, Problem
from vapi_dev.vapi.samples import sample

T0 = datetime(2026, 1, 2, 12, 0, 0).timestamp()  # local time: the clock column reads 12:00:0x in any zone
SECRET = "s3cr3t-value-123"
HOSTILE = "\x1b]0;pwned\x07\x1b[2J[bold red]loud[/bold red]"


def fixed(ex: Exchange, n: int, **fields: Any) -> Exchange:
    """``ex`` with id ex_test_<n> and received n seconds after T0 (plus any other fields)."""
    ex.id = f"ex_test_{n:06d}"
    ex.received_at = T0 + n
    for name, value in fields.items():
        setattr(ex, name, value)
    return ex


def vapi(type: str, reply: Any, call_id: str | None, **fields: Any) -> Exchange:
    """make_exchange with the sample's timestamps at T0 (samples are stamped with the time they are made)."""
    payload = sample(type, call_id, timestamp_ms=int(T0 * 1000))
    return make_exchange(type, reply, payload=payload, call_id=call_id, **fields)


def tool_reply(call_id: str = "call_abc") -> dict[str, Any]:
    return {"results": [{"toolCallId": "toolu_01", "result": "Sunny, 21 C"}]}


def sample_exchanges() -> list[Exchange]:
    """Six exchanges of two calls: a tool call, a status update, an assistant-request answered badly (a
    problem), a transcript with a secret header, a plain GET, and a request whose auth failed."""
    secret_headers = [
        ("Content-Type", "application/json"),
        ("X-Vapi-Secret", SECRET),
        ("Authorization", "Bearer tok_9"),
    ]
    return [
        fixed(vapi("tool-calls", tool_reply(), "call_abc", took_s=0.042), 1),
        fixed(vapi("status-update", {}, "call_abc", took_s=0.003), 2),
        fixed(
            vapi("assistant-request", {"oops": True}, "call_xyz", took_s=6.9),
            3,
            problems=[Problem("error", "assistant-request.no-assistant", "the reply names no assistant")],
        ),
        fixed(vapi("transcript", {}, "call_xyz", headers=secret_headers, took_s=0.004), 4),
        fixed(make_exchange(None, None, method="GET", path="/health", status=200, raw=b"ok", took_s=0.001), 5),
        fixed(
            vapi("end-of-call-report", {}, "call_abc", took_s=0.002),
            6,
            auth=AuthResult("secret", False, "X-Vapi-Secret does not match"),
        ),
    ]


def screen_text(app: App[Any]) -> str:
    """The screen as plain text, as a person would read it (what export_screenshot draws)."""
    console = Console(
        width=app.size.width, height=app.size.height, file=io.StringIO(), record=True, force_terminal=True
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


async def settle(app: App[Any], pilot: Any) -> None:
    """Wait for the app's workers (replay, the journal follower's first rows) and a refresh."""
    await app.workers.wait_for_complete()
    await pilot.pause()


@pytest.fixture(autouse=True)
def _not_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI=true makes the inspector step aside (one of its no-terminal cases), and CI runs this suite with it
    set: the tests that want that case set it themselves."""
    monkeypatch.delenv("CI", raising=False)
