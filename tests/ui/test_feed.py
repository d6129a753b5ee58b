"""The inspector's two sources: the Bus sink of `listen --ui` (never blocking, never raising into forwarding)
and the journal follower of `vapi-dev ui` (new rows within a poll, older ones after, a file that comes later
or is replaced)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from tests.support.apps import AppState
from tests.support.exchanges import make_exchange
from tests.support.http_client import post
from tests.support.listener import running_listener
from tests.support.net import wait_until
from tests.ui.conftest import fixed, sample_exchanges
from vapi_dev.exchange import Finished, Notice, Pending, Ready
from vapi_dev.journal.store import Journal
from vapi_dev.redact import Masker
from vapi_dev.session import Bus
from vapi_dev.ui.app import InspectorApp
from vapi_dev.ui.feed import Batch, JournalFollower, UiSink
from vapi_dev.vapi.samples import sample


async def test_sink_hands_events_over_in_batches() -> None:
    got: list[Batch] = []
    sink = UiSink()
    sink.emit(Notice("info", "before the app"))  # held until attach
    sink.attach(got.append)
    exs = sample_exchanges()
    sink.emit(Ready("http://127.0.0.1:1", "http://127.0.0.1:2", None, "none", note="no tunnel"))
    sink.emit(Pending(exs[0]))
    for ex in exs:
        sink.emit(Finished(ex))
    await wait_until(lambda: got)
    assert len(got) == 1  # one hand-off for the lot
    batch = got[0]
    assert batch.exchanges == [exs[0], *exs]
    assert [n.text for n in batch.notices] == ["before the app", "no tunnel"]
    assert batch.status == "http://127.0.0.1:1 → http://127.0.0.1:2 · public local only"


async def test_sink_never_raises_and_prints_notices_once_the_app_is_gone() -> None:
    orphans: list[Notice] = []

    def broken(batch: Batch) -> None:
        raise RuntimeError("the app broke")

    sink = UiSink(on_orphan=orphans.append)
    sink.attach(broken)
    sink.emit(Finished(make_exchange()))
    await asyncio.sleep(0.1)  # the hand-off ran (and failed) without a word to the Bus
    sink.detach()
    sink.emit(Notice("info", "stopping…"))
    assert [n.text for n in orphans] == ["stopping…"]
    await sink.aclose()


async def test_listener_forwards_to_the_app_while_the_inspector_shows_it(fake_app: tuple[str, AppState]) -> None:
    """`listen --ui` in one process: the Session and the app share the loop, the sink feeds the app."""
    url, state = fake_app
    sink = UiSink()
    app = InspectorApp(Masker(), sink=sink)
    async with running_listener(f"{url}/tool") as lst, app.run_test(size=(120, 40)) as pilot:
        lst.session.bus.sinks.append(sink)
        reply = await post(lst.url, json.dumps(sample("tool-calls", "call_live")).encode())
        assert reply.status == 200 and b"Sunny" in reply.body
        await wait_until(lambda: app.rows.all, timeout=5)
        await pilot.pause()
        ex = app.event_list.selected
        assert ex is not None and ex.call_id == "call_live" and ex.status == 200
        assert state.seen and state.seen[-1]["type"] == "tool-calls"


async def test_a_sink_that_fails_costs_forwarding_nothing(fake_app: tuple[str, AppState]) -> None:
    url, _ = fake_app
    sink = UiSink()

    def broken(batch: Batch) -> None:
        raise RuntimeError("the app broke")

    sink.attach(broken)
    async with running_listener(f"{url}/tool") as lst:
        lst.session.bus.sinks.insert(0, sink)
        for _ in range(3):
            reply = await post(lst.url, json.dumps(sample("tool-calls", "c")).encode())
            assert reply.status == 200
        await lst.sink.wait_finished(3)
        assert not [e for e in lst.sink.events if isinstance(e, Notice)]  # not even a notice: it never raised


def journal_with(path: Path, n: int, start: int = 1) -> Journal:
    j = Journal(path)
    j.append([fixed(make_exchange("status-update", {}, call_id="c1"), i) for i in range(start, start + n)])
    return j


def collect(follower_path: Path, initial: int = 10_000) -> tuple[JournalFollower, list[Batch]]:
    got: list[Batch] = []
    return JournalFollower(follower_path, got.append, initial), got


def ids(batches: list[Batch], older: bool = False) -> list[str]:
    return [ex.id[-3:] for b in batches for ex in (b.older if older else b.exchanges)]


def test_follower_reads_the_newest_first_then_the_older_then_new_rows(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("vapi_dev.ui.feed.FIRST_ROWS", 3)
    monkeypatch.setattr("vapi_dev.ui.feed.BATCH_ROWS", 4)
    path = tmp_path / "j.sqlite3"
    j = journal_with(path, 10)
    follower, got = collect(path)
    follower.poll()
    assert ids(got[:1]) == ["008", "009", "010"]  # a screenful first
    assert ids(got, older=True) == ["004", "005", "006", "007", "001", "002", "003"]  # then the rest, backwards
    got.clear()
    follower.poll()
    assert not ids(got)
    j.append([fixed(make_exchange("tool-calls", {}), i) for i in range(11, 17)])
    follower.poll()
    assert ids(got) == ["011", "012", "013", "014", "015", "016"]  # every new row, in two reads


def test_follower_bounds_the_backlog(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal_with(path, 50)
    follower, got = collect(path, initial=20)
    follower.poll()
    assert len(ids(got)) + len(ids(got, older=True)) == 20


def test_follower_waits_for_the_file_and_starts_over_when_it_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "later.sqlite3"
    follower, got = collect(path)
    follower.poll()
    assert got[0].status is not None and "no journal" in got[0].status and "waiting" in got[0].status
    journal_with(path, 2).close()
    follower.poll()
    assert ids(got) == ["001", "002"]
    path.unlink()
    Path(str(path) + "-wal").unlink(missing_ok=True)
    Path(str(path) + "-shm").unlink(missing_ok=True)
    journal_with(path, 1, start=7).close()
    got.clear()
    follower.poll()
    assert got[0].reset and "replaced" in got[0].notices[0].text
    follower.poll()
    assert ids(got) == ["007"]


def test_follower_thread_stops_when_told(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    j = journal_with(path, 1)
    follower, got = collect(path)
    thread = threading.Thread(target=follower.run)
    thread.start()
    try:
        j.append([fixed(make_exchange("tool-calls", {}), 2)])
        for _ in range(100):
            if "002" in ids(got):
                break
            follower.stop.wait(0.05)
        assert ids(got) == ["001", "002"]
    finally:
        follower.stop.set()
        thread.join(5)
    assert not thread.is_alive()


def test_bus_keeps_the_sink_and_the_others() -> None:
    sink = UiSink()
    other: list[object] = []

    class Other:
        def emit(self, event: object) -> None:
            other.append(event)

        async def aclose(self) -> None:
            pass

    bus = Bus([sink, Other()])  # type: ignore[list-item]
    bus.emit(Notice("info", "x"))  # no loop, no app: held, never raised
    assert other and sink._outbox
