"""`vapi-dev listen` as a user runs it: the real CLI in a subprocess against a real local app."""

from __future__ import annotations

import asyncio
import io
import re
import signal
import socket
import time
from typing import Any

import aiohttp

from tests.conftest import AppState, free_port, run_cli
from vapi_dev.config import Config
from vapi_dev.exchange import Exchange, Finished, Notice, Problem, Ready
from vapi_dev.output.ndjson import NdjsonSink
from vapi_dev.output.terminal import TerminalSink, make_console

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOL_CALL = (
    b'{"message":{"type":"tool-calls","call":{"id":"call_9f3a2b"},"toolCallList":'
    b'[{"id":"tc1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}}'
)
EXCHANGE_FIELDS = {
    "id",
    "received_at",
    "method",
    "path",
    "message_type",
    "call_id",
    "status",
    "duration_ms",
    "request_bytes",
    "response_bytes",
    "error",
}


async def _post(url: str, body: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as client, client.post(url, data=body) as r:
        return r.status, await r.read()


async def test_end_to_end_ready_post_reply_sigint(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, state = fake_app
    proc = cli("listen", base + "/tool", "--port", "0", "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["event"] == "ready" and ready["forward_to"] == base + "/tool"
    assert ready["public_url"] is None and ready["local_url"].startswith("http://127.0.0.1:")
    status, reply = await _post(ready["local_url"] + "/webhook?x=1", TOOL_CALL)
    assert status == 200
    assert reply == b'{"results": [{"toolCallId": "tc1", "result": "Sunny, 21 C"}]}'
    assert state.seen[-1]["path_qs"] == "/tool/webhook?x=1"
    line = await asyncio.to_thread(proc.read_json_line)
    assert line["event"] == "exchange"
    assert set(line) >= EXCHANGE_FIELDS
    assert line["message_type"] == "tool-calls" and line["call_id"] == "call_9f3a2b"
    assert line["status"] == 200 and line["error"] is None
    assert line["request_bytes"] == len(TOOL_CALL) and line["response_bytes"] == len(reply)
    assert line["path"] == "/webhook" and line["query"] == "x=1"
    assert isinstance(line["duration_ms"], float)
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert "Traceback" not in err


async def test_sigint_lets_in_flight_exchange_finish(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, state = fake_app
    proc = cli("listen", base, "--port", "0", "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    pending = asyncio.create_task(_post(ready["local_url"] + "/slow?s=1.0", b"{}"))
    for _ in range(500):  # until the request has reached the app (it replies 1 s later)
        if state.seen:
            break
        await asyncio.sleep(0.01)
    proc.proc.send_signal(signal.SIGTERM)
    status, body = await asyncio.wait_for(pending, 10)
    assert status == 200 and body == b'{"slow": true}'
    code, out, _err = await asyncio.to_thread(proc.interrupt, None)
    assert code == 0
    assert '"event": "exchange"' in out


def test_bad_target_is_exit_2_with_one_line() -> None:
    for bad in ("ftp://x", "localhost:notaport", "70000", "http://:3000"):
        r = run_cli("listen", bad, "--port", "0")
        assert r.returncode == 2, (bad, r.stderr)
        assert "Traceback" not in r.stderr
        assert "error:" in r.stderr


def test_port_in_use_exits_1_at_once() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        r = run_cli("listen", "3000", "--port", str(port), timeout=20)
        assert r.returncode == 1
        assert f"port {port}" in r.stderr and "already in use" in r.stderr
        assert "Traceback" not in r.stderr
        assert time.monotonic() - t0 < 15


def test_help_explains_listen() -> None:
    r = run_cli("listen", "--help")
    assert r.returncode == 0
    for flag in ("--forward-to", "--port", "--timeout", "--insecure", "--json", "--verbose"):
        assert flag in r.stdout


async def test_plain_output_when_not_a_terminal_or_no_color(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, _ = fake_app
    port = free_port()
    proc = cli("listen", base + "/tool", "--port", str(port), env={"NO_COLOR": "1", "FORCE_COLOR": ""})
    # wait until the receiver answers (no fixed sleep: bounded retries on the socket)
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            await asyncio.sleep(0.02)
    status, _ = await _post(f"http://127.0.0.1:{port}/", TOOL_CALL)
    assert status == 200
    await asyncio.sleep(0.5)  # the renderer thread prints beside the forward path
    code, out, _err = await asyncio.to_thread(proc.interrupt)
    assert code == 0
    assert "tool-calls" in out and "get_weather(city=Paris) → Sunny, 21 C" in out
    assert "call_9f3" in out
    assert not ANSI.search(out)


def _exchange(**kw: Any) -> Exchange:
    ex = Exchange.begin("POST", "/", "", [], TOOL_CALL)
    ex.payload = __import__("json").loads(TOOL_CALL)
    ex.message_type, ex.call_id, ex.reply_needed, ex.deadline_s = "tool-calls", "call_9f3a2b", True, 20.0
    ex.status, ex.finished = 200, ex.started + 0.0123
    ex.response_body = b'{"results":[{"toolCallId":"tc1","result":"Sunny"}]}'
    for k, v in kw.items():
        setattr(ex, k, v)
    return ex


async def _render(color: bool | None, *events: Any, **cfg: Any) -> str:
    buf = io.StringIO()
    sink = TerminalSink(make_console(buf, color), Config(**cfg), lambda ex: (ex.payload, ex.response_json()))
    for e in events:
        sink.emit(e)
    await sink.aclose()
    return buf.getvalue()


async def test_colour_and_plain_rendering() -> None:
    ready = Ready(local_url="http://127.0.0.1:4242", forward_to="http://localhost:3000", public_url=None, tunnel="none")
    ex = _exchange()
    coloured = await _render(True, ready, Finished(ex))
    plain = await _render(False, ready, Finished(ex))
    assert ANSI.search(coloured)
    assert not ANSI.search(plain)
    assert ANSI.sub("", coloured) == plain
    assert "Forward →  http://localhost:3000" in plain
    assert "tool-calls ↩" in plain and "200" in plain and " 12 ms" in plain
    assert "get_weather(city=Paris) → Sunny" in plain


async def test_error_problem_and_verbose_lines() -> None:
    ex = _exchange(
        status=502, error="nothing is listening on 127.0.0.1:3000 — is your server running?", error_kind="unreachable"
    )
    ex.problems.append(Problem("warning", "x", "replied in 15 s, 75 % of the 20 s deadline"))
    out = await _render(False, Finished(ex), Notice("warning", "heads up"), verbose=True)
    assert "✗ nothing is listening on 127.0.0.1:3000" in out
    assert "⚠ replied in 15 s" in out
    assert "heads up" in out
    assert '"toolCallList"' in out and "request:" in out


async def test_filters_and_chatty_collapse() -> None:
    a = _exchange()
    b = _exchange(
        message_type="speech-update",
        reply_needed=False,
        payload={"message": {"type": "speech-update", "role": "user", "status": "started"}},
    )
    c = _exchange(
        message_type="speech-update",
        reply_needed=False,
        payload={"message": {"type": "speech-update", "role": "user", "status": "stopped"}},
    )
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
    events = [Finished(_exchange(message_type="status-update", reply_needed=False)) for _ in range(500)]
    out = await _render(False, *events)
    assert "more exchanges" in out
    assert out.count("\n") < 100


async def test_ndjson_sink_writes_every_exchange() -> None:
    buf = io.StringIO()
    sink = NdjsonSink(buf)
    for _ in range(300):
        sink.emit(Finished(_exchange()))
    await sink.aclose()
    lines = buf.getvalue().splitlines()
    assert len(lines) == 300
    rec = __import__("json").loads(lines[0])
    assert set(rec) >= EXCHANGE_FIELDS and rec["duration_ms"] == 12.3


async def test_journal_after_a_real_run(fake_app: tuple[str, AppState], cli: Any, tmp_path: Any) -> None:
    base, _ = fake_app
    journal = tmp_path / "j.sqlite3"
    proc = cli("listen", base + "/tool", "--port", "0", "--json", "--journal", str(journal))
    ready = await asyncio.to_thread(proc.read_json_line)
    for _ in range(3):
        assert (await _post(ready["local_url"], TOOL_CALL))[0] == 200
    for _ in range(3):
        await asyncio.to_thread(proc.read_json_line)
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    r = run_cli("events", "--json", "--journal", str(journal))
    rows = [__import__("json").loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 3 and all(x["message_type"] == "tool-calls" for x in rows)
    r = run_cli("show", "last", "--journal", str(journal))
    assert r.returncode == 0 and "get_weather" in r.stdout


def test_unknown_filter_type_is_warned_about() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vapi_dev",
            "listen",
            "--tunnel",
            "none",
            "--port",
            "0",
            "--json",
            "--events",
            "tool-call",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert __import__("json").loads(proc.stdout.readline())["event"] == "ready"
    notice = __import__("json").loads(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert notice["event"] == "notice" and "tool-call" in notice["text"]
