"""The journal: what JournalSink writes, file mode, bounds, durability after kill -9, bad files."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cli import ROOT
from tests.support.exchanges import make_exchange
from tests.support.net import wait_until
from vapi_dev.exchange import AuthResult, Exchange, Finished, Notice, Problem
from vapi_dev.journal.store import Journal, JournalError, JournalMissing, default_journal_path
from vapi_dev.journal.writer import JournalSink

BODY = b'{"message": {"type":"tool-calls","call":{"id":"call_1"},"x":"\xc3\xa9"}}'  # odd spacing kept


def journal_exchange(n: int = 0, call_id: str = "call_1", body: bytes = BODY) -> Exchange:
    """A finished tool call with a secret header, an auth verdict and a problem; ``n`` ms slower per step."""
    return make_exchange(
        "tool-calls",
        body=body,
        call_id=call_id,
        path="/tools",
        query="a=1",
        headers=[("Content-Type", "application/json"), ("X-Vapi-Secret", "s3cr3t-value"), ("X-Trace", "t")],
        raw=b'{"results":[]}',
        first_byte_s=0.01,
        took_s=0.02 + n / 1000,
        forward_url="http://127.0.0.1:3000/tools?a=1",
        auth=AuthResult("secret", True),
        problems=[Problem("warning", "slow", "slow reply")],
    )


async def test_sink_writes_everything_on_aclose(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.sqlite3"
    journal = Journal(path)
    sink = JournalSink(journal, secrets=["s3cr3t-value"])
    sent = [journal_exchange(i) for i in range(25)]
    sink.emit(Notice("info", "ignored"))
    for ex in sent:
        sink.emit(Finished(ex))
    await sink.aclose()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for suffix in ("-wal", "-shm"):
        extra = Path(str(path) + suffix)
        if extra.exists():
            assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0
    rows = journal.recent(limit=100)
    assert [r.id for r in rows] == [e.id for e in sent]
    got = rows[0]
    assert got.body == BODY  # raw bytes, untouched
    assert got.payload["message"]["type"] == "tool-calls"
    assert got.method == "POST" and got.path == "/tools" and got.query == "a=1"
    assert dict(got.headers)["X-Trace"] == "t"
    assert "s3cr3t-value" not in json.dumps(got.headers)
    assert got.status == 200 and got.response_body == b'{"results":[]}'
    assert got.duration_ms == pytest.approx(20.0, abs=0.5)
    assert got.auth == AuthResult("secret", True)
    assert got.problems == [Problem("warning", "slow", "slow reply")]
    assert got.forward_url == "http://127.0.0.1:3000/tools?a=1"
    raw = (
        path.read_bytes() + Path(str(path) + "-wal").read_bytes()
        if Path(str(path) + "-wal").exists()
        else path.read_bytes()
    )
    assert b"s3cr3t-value" not in raw
    assert journal.get("last") is not None and journal.get("last").id == sent[-1].id  # type: ignore[union-attr]
    assert journal.get(sent[3].id).id == sent[3].id  # type: ignore[union-attr]
    assert journal.get("nope") is None
    journal.close()


async def test_filters_and_by_call(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    a = [journal_exchange(i, call_id="A") for i in range(3)]
    b = [journal_exchange(i, call_id="B") for i in range(2)]
    b[1].message_type = "status-update"
    journal.append([a[0], b[0], a[1], b[1], a[2]])
    assert [e.id for e in journal.by_call("A")] == [e.id for e in a]
    assert [e.id for e in journal.recent(2)] == [b[1].id, a[2].id]
    assert [e.id for e in journal.recent(10, type="status-update")] == [b[1].id]
    assert [e.id for e in journal.recent(10, call_id="B", type="tool-calls")] == [b[0].id]


async def test_keep_bound(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3", keep=5)
    sent = [journal_exchange(i) for i in range(12)]
    for i in range(0, 12, 4):
        journal.append(sent[i : i + 4])
    assert journal.count() == 5
    assert [e.id for e in journal.recent(100)] == [e.id for e in sent[-5:]]


def test_bad_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(JournalError, match="not a vapi-dev journal"):
        Journal(junk)
    with pytest.raises(JournalMissing, match="no journal"):
        Journal(tmp_path / "missing.sqlite3", create=False)
    with pytest.raises(JournalError, match="directory"):
        Journal(tmp_path)
    other = tmp_path / "other.sqlite3"
    db = sqlite3.connect(other)
    db.execute("PRAGMA user_version=99")
    db.close()
    with pytest.raises(JournalError, match="another vapi-dev version"):
        Journal(other)


def test_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_DEV_HOME", str(tmp_path))
    assert default_journal_path() == tmp_path / "journal.sqlite3"
    monkeypatch.delenv("VAPI_DEV_HOME")
    assert default_journal_path().name == "journal.sqlite3"


_WRITER = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from tests.journal.test_journal import journal_exchange
from vapi_dev.exchange import Finished
from vapi_dev.journal.store import Journal
from vapi_dev.journal.writer import JournalSink

async def main():
    sink = JournalSink(Journal({path!r}))
    for i in range(200):
        sink.emit(Finished(journal_exchange(i)))
    print("emitted 200", flush=True)
    i = 200
    while True:  # keep writing until killed, so the kill lands mid-stream
        sink.emit(Finished(journal_exchange(i)))
        i += 1
        await asyncio.sleep(0.001)

asyncio.run(main())
"""


def test_durable_after_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    script = _WRITER.format(root=str(ROOT), path=str(path))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "emitted 200"
        # Wait (bounded) until the background writer has committed the first 200, then kill -9.
        deadline = time.monotonic() + 15
        count = 0
        while time.monotonic() < deadline:
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=5) as db:
                        count = db.execute("SELECT COUNT(*) FROM exchanges").fetchone()[0]
                except sqlite3.OperationalError:
                    count = 0
            if count >= 200:
                break
            time.sleep(0.05)  # polling interval, not synchronisation
    finally:
        os.kill(proc.pid, 9)
        proc.wait(timeout=10)
    assert count >= 200
    journal = Journal(path)
    assert journal.count() >= 200
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


FINAL = 'transcript[transcriptType="final"]'


def test_message_type_is_read_normalised_and_kept_as_sent(tmp_path: Path) -> None:
    """In memory a type is normalised; the journal and its NDJSON record keep Vapi's spelling, and
    `events --type transcript` finds it (also rows an older vapi-dev wrote with the raw type)."""
    from vapi_dev.output.ndjson import exchange_record

    j = Journal(tmp_path / "j.sqlite3")
    final = make_exchange(FINAL, {}, payload={"message": {"type": FINAL, "transcript": "hi", "role": "user"}})
    assert final.message_type == "transcript"
    plain = make_exchange("status-update", {})
    j.append([final, plain])
    back = j.recent(type="transcript")
    assert [ex.id for ex in back] == [final.id] and back[0].message_type == "transcript"
    assert [ex.id for ex in j.recent(type=FINAL)] == [final.id]
    assert j.recent(type="transcript[") == [] and j.recent(type="transcrip") == []
    assert exchange_record(back[0])["message_type"] == FINAL
    with sqlite3.connect(j.path) as db:
        assert db.execute("SELECT message_type FROM exchanges WHERE id = ?", (final.id,)).fetchone()[0] == FINAL


async def test_a_failed_write_is_reported_once_and_later_writes_are_tried_again(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    with journal._lock:  # this connection's "disk" is nearly full
        pages = journal._db.execute("PRAGMA page_count").fetchone()[0]
        journal._db.execute(f"PRAGMA max_page_count = {pages + 4}")
    reported: list[str] = []
    sink = JournalSink(journal, interval=0.01, on_error=reported.append)
    big = b"{" + b" " * 50_000 + b"}"
    for _ in range(5):
        sink.emit(Finished(journal_exchange(body=big)))
    await wait_until(lambda: sink.error is not None)
    for _ in range(5):  # fails again: not reported again
        sink.emit(Finished(journal_exchange(body=big)))
    await wait_until(lambda: not sink._pending)
    with journal._lock:  # space freed
        journal._db.execute("PRAGMA max_page_count = 1000000")
    sink.emit(Finished(journal_exchange()))
    await sink.aclose()
    assert len(reported) == 1 and sink.error == reported[0]
    assert "database or disk is full" in reported[0]
    assert "free disk space" in reported[0] and "--journal" in reported[0] and "--no-journal" in reported[0]
    assert journal.count() >= 1  # recording resumed once there was room


async def test_a_large_parsed_body_is_not_held_while_its_row_waits(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    sink = JournalSink(journal)
    payload = {"message": {"type": FINAL, "transcript": "x" * 100_000, "role": "user"}}
    ex = make_exchange(FINAL, {}, payload=payload)
    sink.emit(Finished(ex))
    assert sink._pending[0] is not ex and sink._pending[0].payload == {"message": {"type": FINAL}}
    assert ex.payload is payload  # what the other sinks read is untouched
    await sink.aclose()
    (got,) = journal.recent()
    assert got.body == ex.body and got.message_type == "transcript" and got.payload == payload
    with sqlite3.connect(journal.path) as db:
        assert db.execute("SELECT message_type FROM exchanges").fetchone()[0] == FINAL
