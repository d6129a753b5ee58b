"""An in-process listener (a real Session on port 0) and the sink that records what it emits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from vapi_dev.config import Config, parse_target
from vapi_dev.exchange import Event, Exchange, Finished
from vapi_dev.session import Bus, Session


class RecordingSink:
    """Keeps every event; ``wait_finished`` waits (bounded) for a number of finished exchanges."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()

    def emit(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    async def aclose(self) -> None:
        pass

    def finished(self) -> list[Exchange]:
        return [e.exchange for e in self.events if isinstance(e, Finished)]

    async def wait_finished(self, n: int, timeout: float = 10.0) -> list[Exchange]:
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
    """A listener forwarding to ``target``; ``overrides`` are Config fields (``session_kwargs`` go to Session)."""
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
