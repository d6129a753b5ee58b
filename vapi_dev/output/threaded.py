"""ThreadedSink: the base of every output sink, running its output on a thread of its own."""

from __future__ import annotations

import asyncio
import queue
import threading
import time

from vapi_dev.exchange import Event

HANDOFF_S = 0.05  # events reach the output thread in batches at most this late


class ThreadedSink:
    """Runs ``handle_batch`` on a daemon thread so that slow output never blocks the event loop.

    ``emit`` only appends to a list on the loop; one timer per HANDOFF_S hands the whole list to the
    thread, so a flood of events costs one thread wake-up (and GIL hand-off) per batch, not per event.
    """

    def __init__(self, name: str, idle_timeout: float | None = None) -> None:
        self._q: queue.SimpleQueue[list[Event] | None] = queue.SimpleQueue()
        self._idle_timeout = idle_timeout
        self._outbox: list[Event] = []
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        self._outbox.append(event)
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a plain caller): hand over at once
                self._handoff()
                return
            self._handle = loop.call_later(HANDOFF_S, self._handoff)

    def _handoff(self) -> None:
        self._handle = None
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._q.put(batch)

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=self._idle_timeout)
            except queue.Empty:
                self.on_idle()
                continue
            batch: list[Event] = []
            stop = first is None
            if first is not None:
                batch.extend(first)
            while not stop:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.extend(item)
            try:
                if batch:
                    self.handle_batch(batch)
            except Exception as e:  # output must never kill the listener
                self.on_error(e)
            if stop:
                self.on_idle()
                self.flush()
                return
            pause = self.pause_after()
            if pause:
                time.sleep(pause)  # under a flood, let events pile up into summary lines

    def handle_batch(self, batch: list[Event]) -> None:
        raise NotImplementedError

    def pause_after(self) -> float:
        return 0.0

    def on_idle(self) -> None:
        pass

    def on_error(self, exc: Exception) -> None:
        pass

    def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handoff()  # nothing emitted before aclose is lost
        self._q.put(None)
        await asyncio.to_thread(self._thread.join, 10.0)
