"""Forward targets as a user types them, through the real CLI: ports as typed, trailing slashes kept,
ambiguous targets refused, and an app's redirect shown on its exchange line with a problem (#12)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.apps import serve
from tests.support.cli import run_cli
from tests.support.net import free_port, wait_listening

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TOOL_CALL = json.dumps(
    {
        "message": {
            "type": "tool-calls",
            "call": {"id": "call_slash1"},
            "toolCallList": [{"id": "tc1", "type": "function", "function": {"name": "f", "arguments": {}}}],
        }
    }
).encode()
RESULT = {"results": [{"toolCallId": "tc1", "result": "ok"}]}


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("3000/webhook", "http://localhost:3000/webhook"),
        (":3000/webhook", "http://localhost:3000/webhook"),
        ("3000", "http://localhost:3000"),
        ("localhost:5000/api/webhook/", "http://localhost:5000/api/webhook/"),
    ],
)
def test_ready_line_shows_the_target_as_typed(cli: Any, typed: str, expected: str) -> None:
    proc = cli("listen", typed, "--port", str(free_port()), "--json")
    ready = proc.read_json_line()
    assert ready["event"] == "ready" and ready["forward_to"] == expected
    code, _out, err = proc.interrupt()
    assert code == 0, err


def test_banner_reads_a_leading_number_as_a_port(cli: Any) -> None:
    proc = cli("listen", "3000/webhook", "--port", str(free_port()), "--color", "never")
    banner = proc.read_stdout_until("Forward")
    assert "http://localhost:3000/webhook" in banner
    assert "http://3000" not in banner
    proc.interrupt()


@pytest.mark.parametrize(
    ("typed", "says"),
    [
        ("3000.5", "neither a port"),
        ("1.2.3", "neither a port"),
        ("http://3000/webhook", "http://localhost:3000"),
        ("localhost:abc", "invalid port"),
        ("localhost:", "no port"),
        ("70000", "invalid port"),
        ("http//x", "broken scheme"),
        ("localhost:3000/my hook", "percent-encode"),
        ("::1", "brackets"),
    ],
)
def test_ambiguous_targets_are_one_line_and_exit_2(typed: str, says: str) -> None:
    r = run_cli("listen", typed, "--port", str(free_port()))
    assert r.returncode == 2, (typed, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    assert says in lines[0] and "Traceback" not in r.stderr


def test_credentials_in_a_target_are_refused_without_echoing_them() -> None:
    r = run_cli("listen", "http://me:hunter2@localhost:3000", "--port", str(free_port()))
    assert r.returncode == 2 and "user:password@" in r.stderr
    assert "hunter2" not in r.stderr + r.stdout


async def post_unfollowed(url: str, body: bytes) -> tuple[int, bytes]:
    """POST like Vapi does: a redirect is the answer, never followed (tests.support.post follows it)."""
    async with aiohttp.ClientSession() as client, client.post(url, data=body, allow_redirects=False) as r:
        return r.status, await r.read()


@pytest.fixture
async def flask_like() -> AsyncIterator[tuple[str, list[str]]]:
    """An app that behaves like Flask with ``@app.post("/api/webhook/")``: 308 to the slash when it is
    missing, the tool reply at the slash and under it. Yields its base URL and the paths it answered 200."""
    answered: list[str] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.path == "/api/webhook":
            return web.Response(status=308, headers={"Location": "/api/webhook/"}, text="Redirecting…")
        answered.append(request.raw_path)
        return web.json_response(RESULT)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner, url = await serve(app, shutdown_timeout=0.5)
    try:
        yield url, answered
    finally:
        await runner.cleanup()


async def test_trailing_slash_reaches_a_flask_like_app(cli: Any, flask_like: tuple[str, list[str]]) -> None:
    base, answered = flask_like
    port = free_port()
    proc = cli("listen", base + "/api/webhook/", "--port", str(port), "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["forward_to"] == base + "/api/webhook/"
    first = await post_unfollowed(f"http://127.0.0.1:{port}/", TOOL_CALL)
    second = await post_unfollowed(f"http://127.0.0.1:{port}/tools", TOOL_CALL)
    assert first == second == (200, json.dumps(RESULT).encode())
    assert [p for p in answered if p.startswith("/api/")] == ["/api/webhook/", "/api/webhook/tools"]  # no 308, no "//"
    for _ in range(2):
        line = await asyncio.to_thread(proc.read_json_line)
        assert line["status"] == 200 and line["problems"] == []
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err


async def test_a_redirect_is_shown_with_where_it_points(cli: Any, flask_like: tuple[str, list[str]]) -> None:
    base, answered = flask_like
    port = free_port()
    proc = cli("listen", base + "/api/webhook", "--port", str(port), "--color", "never")
    await wait_listening(port)
    assert (await post_unfollowed(f"http://127.0.0.1:{port}/", TOOL_CALL))[0] == 308  # relayed as the app sent it
    assert "/api/webhook/" not in answered  # relayed, not followed
    printed = await asyncio.to_thread(proc.read_stdout_until, "Vapi does not follow redirects")
    code, rest, err = await asyncio.to_thread(proc.interrupt)
    out = ANSI.sub("", printed + rest)
    assert code == 0, err
    [line] = [x for x in out.splitlines() if "call_sla" in x]  # the exchange line (the call id prefix)
    assert "308 → /api/webhook/ " in line
    said = " ".join(out.split())  # a problem may wrap on a narrow terminal
    assert (
        "Vapi does not follow redirects: your app answered 308 to /api/webhook/ instead of replying to tool-calls; "
        f"point vapi-dev's target at {base}/api/webhook/ directly"
    ) in said


async def test_a_redirect_is_a_problem_in_ndjson(cli: Any, flask_like: tuple[str, list[str]]) -> None:
    base, _ = flask_like
    port = free_port()
    proc = cli("listen", base, "--port", str(port), "--json")
    await asyncio.to_thread(proc.read_json_line)
    assert (await post_unfollowed(f"http://127.0.0.1:{port}/api/webhook", TOOL_CALL))[0] == 308
    line = await asyncio.to_thread(proc.read_json_line)
    [problem] = line["problems"]
    assert problem == {
        "level": "error",
        "code": "tool-calls.redirect",
        "message": "Vapi does not follow redirects: your app answered 308 to /api/webhook/ instead of replying to "
        "tool-calls; point the server URL at <public URL>/api/webhook/ directly",
    }
    await asyncio.to_thread(proc.interrupt)
