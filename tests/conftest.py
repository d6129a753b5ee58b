"""Shared fixtures: a fake developer app, an in-process listener, and the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from vapi_dev.config import Config, parse_target
from vapi_dev.exchange import Event, Finished
from vapi_dev.session import Bus, Session

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CLI run (in-process or subprocess) journals and keeps state in a temporary home."""
    monkeypatch.setenv("VAPI_DEV_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    monkeypatch.delenv("VAPI_API_KEY", raising=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the fake developer app ---------------------------------------------------------------------


@dataclass
class AppState:
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(state: AppState) -> web.Application:
    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(
            {
                "method": request.method,
                "path_qs": request.raw_path,
                "headers": list(request.headers.items()),
                "body": body,
            }
        )
        return web.Response(body=body, headers={"X-App": "echo", "Content-Type": "application/octet-stream"})

    async def tool(request: web.Request) -> web.StreamResponse:
        data = await request.json()
        msg = data["message"]
        state.seen.append({"path_qs": request.raw_path, "type": msg.get("type")})
        if msg.get("type") == "tool-calls":
            return web.json_response(
                {"results": [{"toolCallId": c["id"], "result": "Sunny, 21 C"} for c in msg.get("toolCallList", [])]}
            )
        if msg.get("type") == "assistant-request":
            return web.json_response({"assistantId": "asst_123"})
        return web.json_response({})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await asyncio.wait_for(state.release.wait(), 10)
        await resp.write(b"data: second\n\n")
        await resp.write_eof()
        return resp

    async def stall(request: web.Request) -> web.StreamResponse:
        await request.read()
        state.seen.append({"path_qs": request.raw_path, "stalled": True})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(state.release.wait(), 10)
        return web.json_response({"results": []})

    async def slow(request: web.Request) -> web.StreamResponse:
        await request.read()
        state.seen.append({"path_qs": request.raw_path, "slow": True})
        await asyncio.sleep(float(request.query.get("s", "0.5")))
        return web.json_response({"slow": True})

    async def big(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append({"size": len(body), "tail": body[-16:]})
        return web.json_response({"size": len(body)})

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async def gzip_reply(request: web.Request) -> web.StreamResponse:
        import gzip

        return web.Response(
            body=gzip.compress(b'{"ok": true}'),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application(client_max_size=512 * 1024 * 1024)
    app.router.add_route("*", "/stream{tail:.*}", stream)
    app.router.add_route("*", "/stall{tail:.*}", stall)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/big", big)
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_route("*", "/gzip", gzip_reply)
    app.router.add_route("*", "/reset", reset)
    app.router.add_route("*", "/tool{tail:.*}", tool)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def fake_app() -> AsyncIterator[tuple[str, AppState]]:
    state = AppState()
    runner = web.AppRunner(make_app(state), shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        state.release.set()
        await runner.cleanup()


# -- an in-process listener ---------------------------------------------------------------------


class RecordingSink:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def aclose(self) -> None:
        pass

    def finished(self) -> list[Any]:
        return [e.exchange for e in self.events if isinstance(e, Finished)]

    async def wait_finished(self, n: int, timeout: float = 10.0) -> list[Any]:
        async with asyncio.timeout(timeout):
            while len(self.finished()) < n:
                self._changed.clear()
                await self._changed.wait()
        return self.finished()


@dataclass
class Listener:
    url: str
    sink: RecordingSink
    session: Session


@contextlib.asynccontextmanager
async def running_listener(target: str, **overrides: Any) -> AsyncIterator[Listener]:
    session_kwargs = overrides.pop("session_kwargs", {})
    config = Config(forward_to=parse_target(target), port=0, **overrides)
    sink = RecordingSink()
    session = Session(config, Bus([sink]), **session_kwargs)
    stop = asyncio.Event()
    task = asyncio.create_task(session.run(stop))
    for _ in range(200):
        if session.receiver.port:
            break
        await asyncio.sleep(0.01)
    try:
        yield Listener(session.local_url, sink, session)
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)


# -- the real CLI in a subprocess ---------------------------------------------------------------


class CliProcess:
    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vapi_dev", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=ROOT,
        )

    def read_json_line(self, timeout: float = 15.0) -> dict[str, Any]:
        """Next NDJSON line on stdout (bounded wait; the listener prints one per event)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"CLI ended early; stderr: {self.stderr_now()}")
            text = line.decode().strip()
            if text:
                return dict(json.loads(text))
        raise AssertionError("no line in time")

    def read_stderr_line_containing(self, text: str, timeout: float = 10.0) -> str:
        """Bounded wait for a stderr line containing ``text``."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            if text in line:
                return line
        raise AssertionError(f"no stderr line with {text!r}")

    def stderr_now(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def interrupt(self, sig: int | None = signal.SIGINT, timeout: float = 15.0) -> tuple[int, str, str]:
        """Send ``sig`` (None: just wait) and collect the exit code and output."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


@pytest.fixture
def cli() -> Iterator[Any]:
    procs: list[CliProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CliProcess:
        p = CliProcess(list(args), env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vapi_dev", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
        input=input.decode() if input else None,
    )
