"""Vapi-aware checks through the real CLI: reply contracts, auth, enforcement, redaction, fallback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from typing import Any

from aiohttp import web

from tests.support.apps import AppState, serve
from tests.support.cli import run_cli
from tests.support.http_client import post
from tests.support.net import free_port, wait_listening

TOOL_CALL = {
    "message": {
        "type": "tool-calls",
        "call": {"id": "call_1"},
        "phoneNumber": {"twilioAuthToken": "TWILIO-SECRET-123", "twilioAccountSid": "AC1"},
        "toolCallList": [
            {"id": "tc1", "type": "function", "function": {"name": "a", "arguments": {}}},
            {"id": "tc2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
    }
}
BODY = json.dumps(TOOL_CALL).encode()


async def _bad_tool_app() -> tuple[web.AppRunner, str, list[bytes]]:
    seen: list[bytes] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(await request.read())
        # two classic mistakes: results as an object, and one id not answered
        return web.json_response({"results": {"toolCallId": "tc1", "result": "ok"}})

    app = web.Application()
    app.router.add_route("*", "/{t:.*}", handler)
    runner, url = await serve(app)
    return runner, url, seen


async def test_bad_tool_reply_gives_problems_in_ndjson(cli: Any) -> None:
    runner, base, _ = await _bad_tool_app()
    try:
        proc = cli("listen", base, "--port", "0", "--json")
        ready = await asyncio.to_thread(proc.read_json_line)
        assert (await post(ready["local_url"], BODY)).status == 200  # relayed as the app sent it
        line = await asyncio.to_thread(proc.read_json_line)
        codes = {p["code"] for p in line["problems"]}
        assert "tool-calls.results-not-array" in codes
        await asyncio.to_thread(proc.interrupt)
    finally:
        await runner.cleanup()


async def test_secret_pass_and_fail_and_nothing_leaks(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, _ = fake_app
    secret = "sk-VERY-SECRET-value"
    proc = cli("listen", base + "/tool", "--port", "0", "--json", "-v", env={"VAPI_DEV_SECRET": secret})
    ready = await asyncio.to_thread(proc.read_json_line)
    ok = await post(ready["local_url"], BODY, {"X-Vapi-Secret": secret})
    bad = await post(ready["local_url"], BODY, {"X-Vapi-Secret": "wrong-" + secret})
    assert ok.status == 200 and bad.status == 200  # default: verify, show, still forward
    first = await asyncio.to_thread(proc.read_json_line)
    second = await asyncio.to_thread(proc.read_json_line)
    assert first["auth"]["ok"] is True and second["auth"]["ok"] is False
    assert first["request_body"]["message"]["phoneNumber"]["twilioAuthToken"] != "TWILIO-SECRET-123"
    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0
    for text in (out, err):
        assert secret not in text and "TWILIO-SECRET-123" not in text


async def test_terminal_output_masks_secrets(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, _ = fake_app
    port = free_port()
    proc = cli("listen", base + "/tool", "--port", str(port), "-v", "--secret", "sk-TERMINAL-secret")
    await wait_listening(port)
    reply = await post(f"http://127.0.0.1:{port}/", BODY, {"X-Vapi-Secret": "sk-TERMINAL-secret"})
    assert reply.status == 200
    printed = await asyncio.to_thread(proc.read_stdout_until, "auth✓")  # the renderer prints beside the forward path
    _code, rest, err = await asyncio.to_thread(proc.interrupt)
    out = printed + rest
    assert "auth✓" in out and "twilioAuthToken" in out
    assert "TWILIO-SECRET-123" not in out + err and "sk-TERMINAL-secret" not in out + err


def _vapi_hmac(secret: str, timestamp: str, body: bytes) -> str:
    # computed here independently: hex(HMAC-SHA256(secret, "<timestamp>.<body>"))
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def test_hmac_and_enforce_auth_never_forwards_failures(cli: Any) -> None:
    runner, base, seen = await _bad_tool_app()
    try:
        proc = cli("listen", base, "--port", "0", "--json", "--hmac-secret", "hmac-key", "--enforce-auth")
        ready = await asyncio.to_thread(proc.read_json_line)
        ts = str(int(time.time()))
        good = {"x-signature": _vapi_hmac("hmac-key", ts, BODY), "x-timestamp": ts}
        bad = {"x-signature": _vapi_hmac("other-key", ts, BODY), "x-timestamp": ts}
        r1 = await post(ready["local_url"], BODY, good)
        r2 = await post(ready["local_url"], BODY, bad)
        assert r1.status == 200 and r2.status == 401
        assert b"vapi-dev rejected" in r2.body
        assert seen == [BODY]  # only the good one reached the app
        l1 = await asyncio.to_thread(proc.read_json_line)
        l2 = await asyncio.to_thread(proc.read_json_line)
        assert l1["auth"]["ok"] and not l2["auth"]["ok"] and l2["status"] == 401
        _code, out, err = await asyncio.to_thread(proc.interrupt)
        assert "hmac-key" not in out + err
    finally:
        await runner.cleanup()


async def test_stale_hmac_timestamp_is_refused_as_a_replay(cli: Any) -> None:
    runner, base, seen = await _bad_tool_app()
    try:
        proc = cli("listen", base, "--port", "0", "--json", "--hmac-secret", "hmac-key", "--enforce-auth")
        ready = await asyncio.to_thread(proc.read_json_line)
        old = str(int(time.time()) - 3600)  # a request captured an hour ago and sent again
        replayed = {"x-signature": _vapi_hmac("hmac-key", old, BODY), "x-timestamp": old}
        r = await post(ready["local_url"], BODY, replayed)
        assert r.status == 401 and seen == []
        line = await asyncio.to_thread(proc.read_json_line)
        assert not line["auth"]["ok"] and re.search(r"360[0-9] s old", line["auth"]["reason"])
        await asyncio.to_thread(proc.interrupt)
        lenient = cli("listen", base, "--port", "0", "--json", "--hmac-secret", "hmac-key", "--hmac-max-skew", "0")
        ready = await asyncio.to_thread(lenient.read_json_line)
        assert (await post(ready["local_url"], BODY, replayed)).status == 200
        assert (await asyncio.to_thread(lenient.read_json_line))["auth"]["ok"]
        await asyncio.to_thread(lenient.interrupt)
    finally:
        await runner.cleanup()


async def test_fallback_answers_valid_reply_when_app_is_down(cli: Any) -> None:
    proc = cli("listen", str(free_port()), "--port", "0", "--json", "--fallback")
    ready = await asyncio.to_thread(proc.read_json_line)
    first = await post(ready["local_url"], BODY)
    reply = json.loads(first.body)
    assert first.status == 200
    assert [r["toolCallId"] for r in reply["results"]] == ["tc1", "tc2"]
    assert all("vapi-dev fallback" in r["error"] for r in reply["results"])
    second = await post(ready["local_url"], b'{"message":{"type":"status-update","status":"ended"}}')
    assert second.status == 200
    l1 = await asyncio.to_thread(proc.read_json_line)
    assert l1["fallback"] is True and l1["problems"] == [] and l1["error_kind"] == "unreachable"
    await asyncio.to_thread(proc.interrupt)


def test_enforce_auth_without_a_method_is_a_usage_error() -> None:
    r = run_cli("listen", "--enforce-auth", "--port", "0")
    assert r.returncode == 2 and "--enforce-auth needs" in r.stderr
    r = run_cli("listen", "--hmac-secret", "x", "--hmac-alg", "md5", "--port", "0")
    assert r.returncode == 2 and "Traceback" not in r.stderr
