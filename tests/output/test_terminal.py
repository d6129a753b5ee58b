"""The terminal renderer: colour and plain text, error, problem and verbose lines, filters, chatty
types collapsed, bursts summarised, every line laid out for the terminal's width."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.cells import cell_len

from tests.cli.test_stream_width import check_rows
from tests.support.exchanges import make_exchange
from vapi_dev.config import Config
from vapi_dev.exchange import Exchange, Finished, Notice, Pending, Problem, Ready
from vapi_dev.output.terminal import TerminalSink, make_console
from vapi_dev.vapi.samples import TOOL_CALL_ID

ANSI = re.compile(r"\x1b\[[0-9;]*m")
CALL_ID = "call_9f3a2b"


def weather(**kw: Any) -> Exchange:
    """The sample get_weather(city=Paris) tool call, answered "Sunny" after 12.3 ms (unless ``took_s``)."""
    reply = {"results": [{"toolCallId": TOOL_CALL_ID, "result": "Sunny"}]}
    return make_exchange("tool-calls", reply, **{"call_id": CALL_ID, "took_s": 0.0123, **kw})


def speech(status: str) -> Exchange:
    payload = {"message": {"type": "speech-update", "role": "user", "status": status}}
    return make_exchange("speech-update", payload=payload, call_id=CALL_ID, took_s=0.0123)


async def _render(color: bool | None, *events: Any, width: int | None = None, **cfg: Any) -> str:
    buf = io.StringIO()
    console = make_console(buf, color, width)
    sink = TerminalSink(console, Config(**cfg), lambda ex: (ex.payload, ex.response_json()))
    for e in events:
        sink.emit(e)
    await sink.aclose()
    return buf.getvalue()


async def test_colour_and_plain_rendering() -> None:
    ready = Ready(local_url="http://127.0.0.1:4242", forward_to="http://localhost:3000", public_url=None, tunnel="none")
    ex = weather()
    coloured = await _render(True, ready, Finished(ex))
    plain = await _render(False, ready, Finished(ex))
    assert ANSI.search(coloured)
    assert not ANSI.search(plain)
    assert ANSI.sub("", coloured) == plain
    assert "Forward →  http://localhost:3000" in plain
    assert "tool-calls ↩" in plain and "200" in plain and " 12 ms" in plain
    assert "get_weather(city=Paris) → Sunny" in plain


async def test_error_problem_and_verbose_lines() -> None:
    ex = weather(
        status=502, error="nothing is listening on 127.0.0.1:3000 — is your server running?", error_kind="unreachable"
    )
    ex.problems.append(Problem("warning", "x", "replied in 15 s, 75 % of the 20 s deadline"))
    out = await _render(False, Finished(ex), Notice("warning", "heads up"), verbose=True)
    assert "✗ nothing is listening on 127.0.0.1:3000" in out
    assert "⚠ replied in 15 s" in out
    assert "heads up" in out
    assert '"toolCallList"' in out and "request:" in out


async def test_filters_and_chatty_collapse() -> None:
    a = weather()
    b = speech("started")
    c = speech("stopped")
    out = await _render(False, Finished(a), Finished(b), Finished(c))
    assert "2× speech-update" in out
    out = await _render(False, Finished(a), Finished(b), Finished(c), all=True)
    assert out.count("speech-update") == 2
    out = await _render(False, Finished(a), Finished(b), events=frozenset({"speech-update"}), all=True)
    assert "tool-calls" not in out and "speech-update" in out
    out = await _render(False, Finished(a), Finished(b), exclude=frozenset({"speech-update"}))
    assert "speech-update" not in out
    out = await _render(False, Finished(a), call="nomatch")
    assert "tool-calls" not in out


async def test_burst_is_summarised() -> None:
    events = [Finished(make_exchange("status-update", call_id=CALL_ID, took_s=0.0123)) for _ in range(500)]
    out = await _render(False, *events)
    assert "more exchanges" in out
    assert out.count("\n") < 100


async def test_filters_match_the_type_as_sent_and_normalised() -> None:
    final = 'transcript[transcriptType="final"]'
    payload = {"message": {"type": final, "role": "user", "transcript": "hello there"}}
    t = make_exchange(final, payload=payload, call_id=CALL_ID)
    for wanted in ("transcript", final):
        out = await _render(False, Finished(weather()), Finished(t), events=frozenset({wanted}), all=True)
        assert 'user: "hello there"' in out and "tool-calls" not in out, wanted
    out = await _render(False, Finished(t), exclude=frozenset({final}), all=True)
    assert "hello there" not in out


async def test_lines_and_bodies_are_masked_escaped_and_literal() -> None:
    from vapi_dev.output.view import make_view
    from vapi_dev.redact import MASK
    from vapi_dev.vapi.auth import AuthConfig

    secret = "conf-secret-9"
    form = f"password=pw-1&note=[bold]{secret}[/bold]\x1b[2J".encode()
    ex = make_exchange(
        None,
        path="/form",
        query=f"access_token=t-1&s={secret}",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=form,
        raw=form,
    )
    buf = io.StringIO()
    cfg = Config(verbose=True, auth=AuthConfig(secret=secret))
    sink = TerminalSink(make_console(buf, True), cfg, make_view(cfg.auth, False))
    sink.emit(Finished(ex))
    await sink.aclose()
    out = ANSI.sub("", buf.getvalue())
    assert f"POST /form?access_token={MASK}&s={MASK}" in out
    assert f"password={MASK}&note=[bold]{MASK}[/bold]\\x1b[2J" in out  # escaped, markup shown literally
    for leak in (secret, "pw-1", "t-1", "\x1b[2J"):
        assert leak not in out


@pytest.mark.parametrize(
    ("width", "latency", "sizes", "summary"),
    [
        (60, "     3 ms ", False, "get_wea…"),
        (80, "     3 ms ", False, "get_weather(city=Paris) → S…"),
        (100, "    3.1 ms ", False, "get_weather(city=Paris) → Sunny"),
        (120, "    3.1 ms ", True, "get_weather(city=Paris) → Sunny"),
        (200, "    3.1 ms ", True, "get_weather(city=Paris) → Sunny"),
    ],
)
async def test_columns_by_width(width: int, latency: str, sizes: bool, summary: str) -> None:
    """Narrower, the sizes go first, then the latency's precision; the summary is cut to what is left."""
    out = await _render(False, Finished(weather(took_s=0.0031)), width=width)
    (line,) = out.splitlines()
    assert cell_len(line) <= width
    assert latency in line and line.endswith(" " + summary)
    assert ("B→" in line) is sizes


async def test_no_width_keeps_lines_whole() -> None:
    """A pipe or a file without COLUMNS: every column, nothing cut or wrapped (a log, not a screen)."""
    problem = "replied in 15 s, 75 % of the 20 s deadline; " * 5
    out = await _render(False, Finished(weather(problems=[Problem("warning", "x", problem)])), Notice("info", problem))
    assert "B→" in out and "get_weather(city=Paris) → Sunny" in out
    assert f"    ⚠ {problem}\n{problem}\n" in out


@pytest.mark.parametrize("width", [60, 80, 120, 200])
async def test_pending_chatty_and_burst_lines_fit(width: int) -> None:
    slow = make_exchange("transfer-destination-request", status=None, took_s=None, call_id=CALL_ID)
    chatty = [speech("started"), speech("stopped"), make_exchange("model-output", call_id="call_" + "7" * 30)]
    out = await _render(True, Pending(slow), *map(Finished, chatty), Notice("info", "flush"), width=width)
    rows = check_rows(out.rstrip("\n"), width)
    pending = next(r for r in rows if "transfer-destination-request ↩ … " in r)
    assert ("still waiting for your app" in pending) is (width >= 120), pending
    assert any("2× speech-update, 1× model-output" in r for r in rows), rows
    types = ["status-update", "transfer-update", "hang", "user-interrupted", "phone-call-control", "session.created"]
    burst = [Finished(make_exchange(types[i % len(types)], call_id=CALL_ID, took_s=0.01)) for i in range(600)]
    rows = check_rows((await _render(True, *burst, width=width)).rstrip("\n"), width)
    summaries = [r for r in rows if "more exchanges (" in r]
    assert summaries and all(r.endswith(", …)") or r.endswith("(…)") for r in summaries), summaries
    shown = max(r.count("×") for r in summaries)  # of the 4 commonest, as many as fit
    assert 1 <= shown <= 4 and (shown == 4) is (width >= 200), summaries
