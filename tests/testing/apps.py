"""Developer apps that `vapi-dev test` runs against, the fixtures it reads, and the console script that runs it.

One aiohttp app, a behaviour per path: ``/right`` answers every reply-needed type by its contract and
acknowledges the rest; ``/wrong`` breaks the contracts; ``/late`` answers right after ``state.delay_s``;
``/crash`` resets the connection; ``/slowack`` acknowledges informational events after ``state.delay_s``;
``/reject`` answers 404; ``/hmac`` and ``/secret`` verify Vapi's credentials themselves (hashlib, not
vapi-dev's code) and answer 401 when they are wrong; ``/volatile`` adds an id, a timestamp and a counter;
``/leak`` breaks the tool-calls contract with a reply that quotes the X-Vapi-Secret it got, an API key and
terminal escape sequences; ``/json`` answers ``state.reply`` as JSON; ``/text`` answers ``state.text`` as
text/plain, whatever its size.

``python -m tests.testing.apps PORT [SECRET]`` serves it in a process of its own (for ``--start``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from tests.support.apps import serve
from tests.support.background import LoopThread
from tests.support.cli import ROOT
from tests.support.exchanges import make_exchange
from vapi_dev.journal.fixtures import fixture
from vapi_dev.redact import Masker

SCRIPT = Path(sys.executable).with_name("vapi-dev")
PCM = b"\x00\x01" * 160  # a little raw audio for voice-request
LEAKED_KEY = "sk_live_4f9a8b7c6d5e"
# A short call as a fixture records it: (type, the reply the app gave), in order.
TOOL_OK = {"results": [{"toolCallId": "call_Xq2v9ZkLm3Np", "result": "Sunny, 21 C"}]}
CALL = [("status-update", {}), ("tool-calls", TOOL_OK), ("assistant-request", {"assistantId": "asst_123"})]


@dataclass
class AppState:
    seen: list[dict[str, Any]] = field(default_factory=list)
    tool_result: str = "Sunny, 21 C"
    delay_s: float = 0.3
    secret: str = "hunter2-secret"
    counter: int = 0
    reply: Any = None
    text: str = ""


def right_reply(msg: dict[str, Any], state: AppState) -> web.StreamResponse:
    """The reply each reply-needed type's contract asks for; ``{}`` acknowledges anything else."""
    mtype = msg.get("type")
    if mtype == "tool-calls":
        return web.json_response(
            {"results": [{"toolCallId": c["id"], "result": state.tool_result} for c in msg.get("toolCallList", [])]}
        )
    replies: dict[str, Any] = {
        "function-call": {"result": state.tool_result},
        "assistant-request": {"assistantId": "asst_123"},
        "transfer-destination-request": {"destination": {"type": "number", "number": "+15555550123"}},
        "handoff-destination-request": {"destination": {"type": "assistant", "assistantName": "Billing"}},
        "knowledge-base-request": {"documents": [{"content": "Paris is sunny.", "similarity": 0.9}]},
        "call.endpointing.request": {"timeoutSeconds": 0.5},
        "campaign.predial": {"eligible": True},
    }
    if mtype == "voice-request":
        return web.Response(body=PCM, content_type="application/octet-stream")
    return web.json_response(replies.get(str(mtype), {}))


def _verified(request: web.Request, body: bytes, state: AppState, how: str) -> bool:
    if how == "secret":
        return hmac.compare_digest(request.headers.get("X-Vapi-Secret", ""), state.secret)
    ts = request.headers.get("x-timestamp", "")
    want = hmac.new(state.secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return bool(ts) and hmac.compare_digest(request.headers.get("x-signature", ""), want)


def make_app(state: AppState) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        how = request.match_info["how"]
        state.seen.append({"how": how, "path_qs": request.raw_path, "headers": dict(request.headers), "body": body})
        msg = json.loads(body).get("message", {})
        reply_needed = msg.get("type") in ("tool-calls", "assistant-request") or "request" in str(msg.get("type"))
        if how == "crash":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if how == "reject":
            return web.Response(status=404, text="no such route")
        if how in ("hmac", "secret") and not _verified(request, body, state, how):
            return web.json_response({"error": "bad signature"}, status=401)
        if how == "late" or (how == "slowack" and not reply_needed):
            await asyncio.sleep(state.delay_s)
        if how == "wrong":
            if msg.get("type") == "tool-calls":
                return web.json_response({"results": "Sunny"})
            if msg.get("type") == "assistant-request":
                return web.json_response({"assistant": "Weather bot"})
        if how == "leak":
            said = request.headers.get("X-Vapi-Secret", "")
            leak = {"results": f"secret {said} \x1b[31mred\x1b]0;title\x07", "apiKey": LEAKED_KEY}
            return web.json_response(leak, headers={"X-Echo": said})
        if how == "json":
            return web.json_response(state.reply)
        if how == "text":
            return web.Response(text=state.text)
        if how == "volatile":
            state.counter += 1
            reply = {"id": str(uuid.uuid4()), "timestamp": time.time(), "counter": state.counter, "ok": True}
            return web.json_response(reply)
        return right_reply(msg, state)

    app = web.Application()
    app.router.add_route("POST", "/{how}{tail:.*}", handle)  # a listener forwarding to /right sends /right/
    return app


@dataclass
class Running:
    url: str
    state: AppState
    loop: LoopThread


@contextlib.contextmanager
def app_running(state: AppState | None = None) -> Iterator[Running]:
    """The app served on a background loop for the block (its base URL, state and loop)."""
    lt = LoopThread()
    st = state or AppState()
    runner, url = lt.run(serve(make_app(st), shutdown_timeout=0.5))
    try:
        yield Running(url, st, lt)
    finally:
        lt.run(runner.cleanup())
        lt.stop()


def vapi_test(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``vapi-dev test ARGS`` through the installed console script, from the repository root."""
    full = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [str(SCRIPT), "test", *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=timeout
    )


def write_fixture(
    path: Path, types_and_replies: list[tuple[str, Any]], *, call_id: str = "call_fixture_1", **kw: Any
) -> dict[str, Any]:
    """A fixture as export writes it (journal.fixtures.fixture, masked) of sample requests and recorded replies;
    ``kw`` goes to make_exchange (path, headers, …)."""
    exchanges = [make_exchange(t, reply, call_id=call_id, **kw) for t, reply in types_and_replies]
    data = fixture(call_id, exchanges, Masker())
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


def edit_fixture(path: Path, index: int, **keys: Any) -> dict[str, Any]:
    """Set keys of exchange ``index`` (an ``expect``, say) in the fixture file; returns the whole file."""
    data = json.loads(path.read_text())
    data["exchanges"][index].update(keys)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return dict(data)


async def _main(port: int, secret: str) -> None:
    runner = web.AppRunner(make_app(AppState(secret=secret)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"app listening on {port}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(_main(int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "hunter2-secret"))
