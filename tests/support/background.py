"""An event loop on a background thread, and a developer app and a vapi-dev listener served there.

Commands run through typer's CliRunner call ``asyncio.run`` themselves, so the servers they talk to
must live on another thread's loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.support.apps import serve

T = TypeVar("T")


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: list[tuple[str, str]]
    body: bytes


@dataclass
class AppState:
    seen: list[Seen] = field(default_factory=list)
    tool_result: str = "Sunny, 21 C"


def make_app(state: AppState) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(Seen(request.method, request.raw_path, list(request.headers.items()), body))
        try:
            msg = (await request.json()).get("message", {})
        except ValueError:
            return web.Response(body=body, content_type="application/octet-stream")
        if msg.get("type") == "tool-calls":
            return web.json_response(
                {"results": [{"toolCallId": c["id"], "result": state.tool_result} for c in msg.get("toolCallList", [])]}
            )
        if msg.get("type") == "assistant-request":
            return web.json_response({"assistantId": "asst_123"})
        return web.json_response({})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


class LoopThread:
    """An event loop running in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextmanager
def app_in_thread() -> Iterator[tuple[str, AppState, LoopThread]]:
    """(app URL, its state, the loop thread) for the duration of the block."""
    lt = LoopThread()
    state = AppState()
    runner, url = lt.run(serve(make_app(state), shutdown_timeout=0.5))
    try:
        yield url, state, lt
    finally:
        lt.run(runner.cleanup())
        lt.stop()


@contextmanager
def listener_in_thread(lt: LoopThread, target: str, journal_path: Path) -> Iterator[str]:
    """A real vapi-dev listener (receiver + forwarder) journaling into ``journal_path``."""
    from vapi_dev.config import Config, parse_target
    from vapi_dev.journal.store import Journal
    from vapi_dev.journal.writer import JournalSink
    from vapi_dev.session import Bus, Session

    stop_holder: list[asyncio.Event] = []

    bus = Bus([JournalSink(Journal(journal_path))])

    async def start() -> tuple[Session, asyncio.Task[None]]:
        session = Session(Config(forward_to=parse_target(target), port=0), bus)
        stop = asyncio.Event()
        stop_holder.append(stop)
        task = asyncio.create_task(session.run(stop))
        for _ in range(500):
            if session.receiver.port or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        return session, task

    async def finish(task: asyncio.Task[None]) -> None:
        stop_holder[0].set()
        await asyncio.wait_for(task, 15)
        await bus.aclose()  # as `vapi-dev listen` does at a clean stop: the journal is flushed

    session, task = lt.run(start())
    try:
        yield session.local_url
    finally:
        lt.run(finish(task))
