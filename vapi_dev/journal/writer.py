"""JournalSink: the Sink that writes finished exchanges to the Journal in batches, off the event loop."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Sequence

from vapi_dev.exchange import Event, Exchange, Finished
from vapi_dev.journal.store import Journal, JournalError
from vapi_dev.vapi.messages import raw_type

FLUSH_INTERVAL_S = 0.15  # kill -9 loses at most about this much
FLUSH_BATCH = 256  # under load the writer is woken this often instead: exchanges held waiting cost memory
SLIM_OVER = 64 * 1024  # a parsed body larger than this is not held while its row waits (see _slim)


class JournalSink:
    """A Sink that queues Finished exchanges and writes them in batches on a background thread.

    ``emit`` only appends to a deque (O(1), safe from the event loop); the thread writes every
    ~150 ms, or as soon as FLUSH_BATCH exchanges wait, in one transaction; ``aclose`` flushes
    everything and stops the thread. A write failure (a full disk) drops that batch, is kept in
    ``error`` and passed once to ``on_error``, called from the writer thread (from the loop for the last
    flush in ``aclose``), so hand it to the loop (``Session.notice_threadsafe``). Later batches are
    tried again: once space is freed, recording resumes.
    """

    def __init__(
        self,
        journal: Journal,
        *,
        secrets: Sequence[str] = (),
        secret_names: Sequence[str] = (),
        interval: float = FLUSH_INTERVAL_S,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.journal = journal
        self.error: str | None = None
        self._secrets = tuple(secrets)
        self._names = tuple(secret_names)
        self._interval = interval
        self._on_error = on_error
        self._pending: deque[Exchange] = deque()
        self._stop = threading.Event()
        self._kick = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vapi-dev-journal", daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        if isinstance(event, Finished):
            ex = event.exchange
            self._pending.append(_slim(ex) if ex.payload is not None and len(ex.body) > SLIM_OVER else ex)
            if len(self._pending) >= FLUSH_BATCH and not self._kick.is_set():
                self._kick.set()

    def _flush(self) -> None:
        batch: list[Exchange] = []
        while self._pending:
            batch.append(self._pending.popleft())
        if not batch:
            return
        try:
            self.journal.append(batch, self._secrets, self._names)
        except JournalError as exc:
            if self.error is None and self._on_error is not None:
                self._on_error(exc.message)
            self.error = exc.message

    def _run(self) -> None:
        while not self._stop.is_set():
            self._kick.wait(self._interval)
            self._kick.clear()
            self._flush()
        self._flush()

    async def aclose(self) -> None:
        self._stop.set()
        self._kick.set()
        await asyncio.to_thread(self._thread.join)
        self._flush()  # anything emitted after the thread's last pass


def _slim(ex: Exchange) -> Exchange:
    """``ex`` as its row needs it: the same bytes, and of the parsed body only message.type as sent.

    A 2 MB payload is some 100,000 objects; held for the ~150 ms a row waits, every garbage collection
    in that time walks them, with the GIL held, and every exchange waits for it (scripts/stall).
    """
    raw = raw_type(ex)
    return dataclasses.replace(ex, payload={"message": {"type": raw}} if raw else None)
