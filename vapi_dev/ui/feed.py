"""Where the inspector's exchanges come from: the listener's Bus (``listen --ui``) or the journal file
(``vapi-dev ui``, following a listener that runs in another process).

Neither source ever makes the forward path wait: ``UiSink.emit`` appends to a list and arms one timer, the
follower reads the file on a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vapi_dev.exchange import Event, Exchange, Finished, Notice, Pending, Ready, TunnelChanged
from vapi_dev.journal.store import exchange_from_row

HANDOFF_S = 0.05  # events reach the app in batches at most this late (one refresh per batch, not per event)
FLOOD_HANDOFF_S = 0.25  # … and this late once a batch was large: under a flood the screen updates 4 times a second
FLOOD_BATCH = 25  # events in one batch that make a flood
MAX_BACKLOG = 50_000  # events held for an app that has not started (or is gone): beyond, the oldest go
POLL_S = 0.1  # the follower looks for new rows this often: a new exchange shows within 250 ms
FIRST_ROWS = 150  # rows the follower reads first (a tall screenful), before the older ones
BATCH_ROWS = 2_000  # rows read per query afterwards


@dataclass
class Batch:
    """What one hand-off carries: exchanges (new or completed, in order), notices, the source's state."""

    exchanges: list[Exchange] = field(default_factory=list)
    older: list[Exchange] = field(default_factory=list)  # rows from before the first ones, oldest first
    notices: list[Notice] = field(default_factory=list)
    status: str | None = None  # a new description of the source, e.g. the listener's URLs
    reset: bool = False  # forget every exchange shown so far (the journal file was replaced)


Deliver = Callable[[Batch], None]


def ready_status(ready: Ready) -> str:
    """The status line of a listener: where it listens and forwards, and its public URL."""
    public = ready.public_url or "local only"
    return f"{ready.local_url} → {ready.forward_to} · public {public}"


class UiSink:
    """A Sink for ``listen --ui``: hands events to the inspector on the same loop, in batches.

    ``emit`` never blocks and never raises (the Bus would report it, but forwarding must not even notice);
    until ``attach`` and after ``detach`` events wait in a bounded backlog, and ``on_orphan`` (the plain
    stream's notices, after the app has gone) gets the notices sent meanwhile.
    """

    def __init__(self, on_orphan: Callable[[Notice], None] | None = None) -> None:
        self._deliver: Deliver | None = None
        self._outbox: list[Event] = []
        self._handle: asyncio.TimerHandle | None = None
        self.on_orphan = on_orphan
        self.ready: Ready | None = None
        self._interval = HANDOFF_S

    def attach(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._arm()

    def detach(self) -> None:
        """The app has gone: the notices it did not get yet (a "stopping…") go to ``on_orphan`` instead."""
        self._deliver = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        left, self._outbox = self._outbox, []
        if self.on_orphan is not None:
            for event in left:
                if isinstance(event, Notice):
                    self.on_orphan(event)

    def emit(self, event: Event) -> None:
        try:
            if isinstance(event, Ready):
                self.ready = event
            if self._deliver is None and isinstance(event, Notice) and self.on_orphan is not None:
                self.on_orphan(event)  # the app is gone (or not yet up): the plain line on stderr
                return
            self._outbox.append(event)
            if len(self._outbox) > MAX_BACKLOG:
                del self._outbox[: len(self._outbox) - MAX_BACKLOG]
            self._arm()
        except Exception:  # the display loses an event; forwarding never hears of it
            pass

    def _arm(self) -> None:
        if self._handle is not None or self._deliver is None or not self._outbox:
            return
        with contextlib.suppress(RuntimeError):  # no running loop: delivered on the next emit with one
            self._handle = asyncio.get_running_loop().call_later(self._interval, self._flush)

    def _flush(self) -> None:
        self._handle = None
        deliver = self._deliver
        if deliver is None or not self._outbox:
            return
        events, self._outbox = self._outbox, []
        self._interval = FLOOD_HANDOFF_S if len(events) >= FLOOD_BATCH else HANDOFF_S
        batch = Batch()
        for event in events:
            if isinstance(event, (Finished, Pending)):
                batch.exchanges.append(event.exchange)
            elif isinstance(event, Notice):
                batch.notices.append(event)
            elif isinstance(event, Ready):
                batch.status = ready_status(event)
                if event.note:
                    batch.notices.append(Notice("info", event.note))
            elif isinstance(event, TunnelChanged):
                what = f"public URL {'back' if event.up else 'lost'}: {event.public_url or '—'} {event.reason}"
                batch.notices.append(Notice("info" if event.up else "warning", what.strip()))
        with contextlib.suppress(Exception):
            deliver(batch)

    async def aclose(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._flush()


class JournalFollower:
    """Reads a journal file's rows as they are written: the newest ``initial`` first, then the older ones
    (``Batch.older``), then every new row, by the journal's row number (``seq``, which only grows).

    ``run`` is meant for a thread: it polls every POLL_S until ``stop`` is set, waits for a file that does not
    exist yet, and starts over when the file is replaced (its rows numbered lower than those seen).
    """

    def __init__(self, path: Path, deliver: Deliver, initial: int = 10_000, *, masked: bool = True) -> None:
        self.path = path
        self.masked = masked  # the copies with listen's secret values masked (see journal/store.py)
        self.deliver = deliver
        self.initial = initial
        self.stop = threading.Event()
        self._db: sqlite3.Connection | None = None
        self._last = 0  # the highest seq delivered
        self._inode: int | None = None  # of the file read: another one means another journal
        self._waiting_told = False

    def _open(self) -> bool:
        if self._db is not None:
            return True
        if not self.path.is_file():
            if not self._waiting_told:
                self._waiting_told = True
                self.deliver(Batch(status=f"no journal at {self.path} yet — waiting for a listener to write one"))
            return False
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False, timeout=2.0)
            db.row_factory = sqlite3.Row
            db.execute("SELECT seq FROM exchanges LIMIT 1").fetchall()
        except sqlite3.Error:
            return False  # not written yet (no table): looked at again on the next poll
        self._db = db
        with contextlib.suppress(OSError):
            self._inode = self.path.stat().st_ino
        if self._last == 0:
            self._first()
        return True

    def _rows(self, sql: str, args: tuple[int, ...]) -> list[tuple[int, Exchange]]:
        assert self._db is not None
        rows = self._db.execute(sql, args).fetchall()
        return [(int(r["seq"]), exchange_from_row(r, masked=self.masked)) for r in rows]

    def _first(self) -> None:
        newest = self._rows("SELECT * FROM exchanges ORDER BY seq DESC LIMIT ?", (min(FIRST_ROWS, self.initial),))
        newest.reverse()
        self._last = newest[-1][0] if newest else 0
        self.deliver(Batch(exchanges=[ex for _, ex in newest], status=f"journal {self.path}"))
        left = self.initial - len(newest)
        oldest = newest[0][0] if newest else 0
        while left > 0 and oldest > 1 and not self.stop.is_set():
            sql = "SELECT * FROM exchanges WHERE seq < ? ORDER BY seq DESC LIMIT ?"
            older = self._rows(sql, (oldest, min(BATCH_ROWS, left)))
            if not older:
                break
            older.reverse()
            oldest = older[0][0]
            left -= len(older)
            self.deliver(Batch(older=[ex for _, ex in older]))

    def poll(self) -> None:
        """Deliver the rows written since the last poll (at most BATCH_ROWS per query, every one in the end)."""
        if not self._open():
            return
        assert self._db is not None
        try:
            top = self._db.execute("SELECT MAX(seq) FROM exchanges").fetchone()[0] or 0
            if top < self._last or self._replaced():  # another file now: start over
                self._restart("the journal was replaced; reading it again", reset=True)
                return
            while top > self._last and not self.stop.is_set():
                rows = self._rows(
                    "SELECT * FROM exchanges WHERE seq > ? ORDER BY seq LIMIT ?", (self._last, BATCH_ROWS)
                )
                if not rows:
                    break
                self._last = rows[-1][0]
                self.deliver(Batch(exchanges=[ex for _, ex in rows]))
        except sqlite3.Error as exc:
            self._restart(f"cannot read the journal {self.path} ({exc}); trying again")

    def _replaced(self) -> bool:
        try:
            return self.path.stat().st_ino != self._inode
        except OSError:
            return True  # removed

    def _restart(self, why: str, *, reset: bool = False) -> None:
        """Close the file (read again from the start when ``reset``: another journal, or none)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db = None
        self._waiting_told = False
        if reset:
            self._last = 0
        self.deliver(Batch(notices=[Notice("warning", why)], reset=reset))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # a damaged row, say: one notice, and the next poll goes on
                self._restart(f"journal: {exc!r:.200}; trying again")
            self.stop.wait(POLL_S)
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
