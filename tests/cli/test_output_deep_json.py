"""A valid JSON body nested 100,000 deep breaks no output (#11, item 8): summaries give up with a short
placeholder, -v and --json -v keep every line of a batch, and events, show and export still work."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.support.apps import AppState, make_app, serve
from tests.support.background import LoopThread
from tests.support.cli import CliProcess
from tests.support.exchanges import make_exchange
from tests.support.net import free_port
from vapi_dev.config import Config
from vapi_dev.exchange import Exchange, Finished
from vapi_dev.output.ndjson import NdjsonSink
from vapi_dev.output.terminal import TerminalSink, make_console
from vapi_dev.output.view import make_view
from vapi_dev.vapi.summary import TOO_DEEP, summarize

SCRIPT = Path(sys.executable).with_name("vapi-dev")
DEPTH = 100_000
DEEP = b"[" * DEPTH + b"]" * DEPTH


def deep_list() -> Any:
    """The parsed form of DEEP, built without recursion (as a parser that could read it would give it)."""
    value: Any = []
    for _ in range(DEPTH - 1):
        value = [value]
    return value


def deep_tool_call() -> Exchange:
    """A tool call whose arguments are a JSON string nested 100,000 deep."""
    payload = {
        "message": {
            "type": "tool-calls",
            "toolCallList": [{"id": "t1", "function": {"name": "deep", "arguments": DEEP.decode()}}],
        }
    }
    return make_exchange("tool-calls", {"results": []}, payload=payload)


def neighbours() -> tuple[Exchange, Exchange]:
    return make_exchange("status-update", call_id="call_before"), make_exchange("status-update", call_id="call_after")


def test_summary_gives_up_gracefully() -> None:
    assert summarize(deep_tool_call()) == TOO_DEEP


async def test_terminal_keeps_the_batch() -> None:
    before, after = neighbours()
    deep = make_exchange(None, body=DEEP, payload=deep_list(), raw=DEEP, path="/deep")
    buf = io.StringIO()
    # A view that hands the deep value on unmasked, as a careless view might: rendering it must not cost the batch.
    sink = TerminalSink(make_console(buf, False), Config(verbose=True), lambda ex: (ex.payload, ex.payload))
    for ex in (before, deep, deep_tool_call(), after):
        sink.emit(Finished(ex))
    await sink.aclose()
    out = buf.getvalue()
    assert "call_bef" in out and "call_aft" in out and "POST /deep" in out and TOO_DEEP in out
    assert "could not render an event" not in out and len(out) < 50_000  # the deep bodies are shortened


async def test_ndjson_keeps_the_batch() -> None:
    before, after = neighbours()
    deep = make_exchange(None, body=DEEP, payload=deep_list(), raw=DEEP, path="/deep")
    buf = io.StringIO()
    sink = NdjsonSink(buf, lambda ex: (ex.payload, ex.payload))  # json.dumps of the deep value fails
    for ex in (before, deep, deep_tool_call(), after):
        sink.emit(Finished(ex))
    await sink.aclose()
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert [r["id"] for r in records] == [before.id, deep.id, records[2]["id"], after.id]
    assert records[1]["render_error"] == "RecursionError" and records[1]["request_body"].startswith("[[[")
    assert records[2]["summary"] == TOO_DEEP
    # the real view never hands a deep value on: it shows the masked text
    request, _ = make_view(None, False)(deep)
    assert isinstance(request, str) and len(request) == len(DEEP)


def vapi_dev(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    exe = str(SCRIPT) if SCRIPT.exists() else shutil.which("vapi-dev")
    if exe is None:
        pytest.skip("the vapi-dev console script is not installed in this environment")
    env = {**os.environ, "VAPI_DEV_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=60)


def post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()


@pytest.mark.parametrize("mode", [["--json", "-v"], ["-v", "--color", "never"]])
def test_listen_and_journal_commands_survive_a_deep_body(tmp_path: Path, mode: list[str]) -> None:
    lt = LoopThread()
    runner, app_url = lt.run(serve(make_app(AppState()), shutdown_timeout=0.5))  # echoes: the reply is as deep
    try:
        port = free_port()
        proc = CliProcess(
            ["listen", app_url, "--port", str(port), "--tunnel", "none", *mode],
            {"VAPI_DEV_HOME": str(tmp_path), "NO_COLOR": "1"},
        )
        try:
            if "--json" in mode:
                assert proc.read_json_line()["event"] == "ready"
            else:
                proc.read_stdout_until("Waiting for events")
            url = f"http://127.0.0.1:{port}"
            post(url + "/deep", DEEP)
            post(url + "/after", b'{"message": {"type": "status-update", "status": "in-progress"}}')
            if "--json" in mode:
                first, second = proc.read_json_line(), proc.read_json_line()
                assert first["path"] == "/deep" and second["path"] == "/after"
                assert isinstance(first["request_body"], str) and first["request_body"].startswith("[[[")
            else:
                seen = proc.read_stdout_until("status-update")
                assert "POST /deep" in seen
        finally:
            code, out, err = proc.interrupt()
        assert code == 0 and "Traceback" not in out + err and "could not render" not in out + err
    finally:
        lt.run(runner.cleanup())
        lt.stop()
    for args in (["events"], ["events", "--json"], ["show", "1"], ["show", "1", "--json"]):
        r = vapi_dev(*args, home=tmp_path)
        assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, (args, r.stderr)
    shown = json.loads(vapi_dev("show", "1", "--json", home=tmp_path).stdout)
    assert shown["request"] == DEEP.decode()  # the text, since no parser reads it back as data


def test_export_and_show_of_a_deep_exchange(tmp_path: Path) -> None:
    from vapi_dev.journal.store import Journal

    body = b'{"message": {"type": "tool-calls", "call": {"id": "call_deep"}, "x": ' + DEEP + b"}}"
    ex = make_exchange("tool-calls", body=body, payload=None, call_id="call_deep", raw=DEEP)
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.append([ex, make_exchange("tool-calls", {"results": []}, call_id="call_deep")])
    journal.close()
    r = vapi_dev("export", "--call", "call_deep", home=tmp_path)
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)["exchanges"]
    assert len(items) == 2 and "body_base64" in items[0]  # kept byte for byte
    for args in (["show", ex.id], ["show", ex.id, "--json"], ["events"], ["events", "--json"]):
        r = vapi_dev(*args, home=tmp_path)
        assert r.returncode == 0 and "Traceback" not in r.stdout + r.stderr, (args, r.stderr)
