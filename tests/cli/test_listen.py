"""`vapi-dev listen` as a user runs it: the real CLI in a subprocess against a real local app."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from typing import Any

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.exchanges import EXCHANGE_FIELDS
from tests.support.http_client import post
from tests.support.net import free_port, wait_listening

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOL_CALL = (
    b'{"message":{"type":"tool-calls","call":{"id":"call_9f3a2b"},"toolCallList":'
    b'[{"id":"tc1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}}'
)


async def test_end_to_end_ready_post_reply_sigint(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, state = fake_app
    proc = cli("listen", base + "/tool", "--port", "0", "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["event"] == "ready" and ready["forward_to"] == base + "/tool"
    assert ready["public_url"] is None and ready["local_url"].startswith("http://127.0.0.1:")
    r = await post(ready["local_url"] + "/webhook?x=1", TOOL_CALL)
    assert r.status == 200
    reply = r.body
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
    pending = asyncio.create_task(post(ready["local_url"] + "/slow?s=1.0", b"{}"))
    for _ in range(500):  # until the request has reached the app (it replies 1 s later)
        if state.seen:
            break
        await asyncio.sleep(0.01)
    proc.proc.send_signal(signal.SIGTERM)
    r = await asyncio.wait_for(pending, 10)
    assert r.status == 200 and r.body == b'{"slow": true}'
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
    await wait_listening(port)  # until the receiver answers
    assert (await post(f"http://127.0.0.1:{port}/", TOOL_CALL)).status == 200
    # the renderer thread prints beside the forward path: wait for the exchange's line
    printed = await asyncio.to_thread(proc.read_stdout_until, "get_weather(city=Paris) → Sunny, 21 C")
    code, rest, _err = await asyncio.to_thread(proc.interrupt)
    out = printed + rest
    assert code == 0
    assert "tool-calls" in out and "get_weather(city=Paris) → Sunny, 21 C" in out
    assert "call_9f3" in out
    assert not ANSI.search(out)


async def test_journal_after_a_real_run(fake_app: tuple[str, AppState], cli: Any, tmp_path: Any) -> None:
    base, _ = fake_app
    journal = tmp_path / "j.sqlite3"
    proc = cli("listen", base + "/tool", "--port", "0", "--json", "--journal", str(journal))
    ready = await asyncio.to_thread(proc.read_json_line)
    for _ in range(3):
        assert (await post(ready["local_url"], TOOL_CALL)).status == 200
    for _ in range(3):
        await asyncio.to_thread(proc.read_json_line)
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert oct(journal.stat().st_mode & 0o777) == "0o600"
    r = run_cli("events", "--json", "--journal", str(journal))
    rows = [json.loads(x) for x in r.stdout.splitlines()]
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
    assert json.loads(proc.stdout.readline())["event"] == "ready"
    notice = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert notice["event"] == "notice" and "tool-call" in notice["text"]


def test_banner_is_honest_about_who_can_reach_the_receiver(cli: Any) -> None:
    """Bound to every interface (only loopback is ever sent to), the banner warns instead of saying local."""
    for host, open_ in (("0.0.0.0", True), ("127.0.0.1", False)):
        proc = cli("listen", "3000", "--host", host, "--port", "0", "--tunnel", "none", "--json")
        ready = proc.read_json_line()
        assert ready["event"] == "ready"
        _code, out, err = proc.interrupt()
        text = json.dumps(ready) + out + err
        assert ("open to your network" in text) is open_, text
        assert ("only this machine can reach the receiver" in text) is (not open_), text
