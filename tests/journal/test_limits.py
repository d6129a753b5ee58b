"""The journal's bounds: each body kept up to a limit with its real size, a refused request's body not kept
at all, the oldest rows dropped beyond a total size, and a v1 journal brought to v2 in place."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.exchanges import make_exchange
from tests.support.http_client import post
from vapi_dev.exchange import AuthResult, Exchange
from vapi_dev.journal.store import SCHEMA_VERSION, Journal


def tool_call(pad: int = 300, reply: bytes = b'{"results":[]}') -> Exchange:
    payload = {"message": {"type": "tool-calls", "call": {"id": "call_L"}, "toolCallList": [], "pad": "p" * pad}}
    return make_exchange("tool-calls", payload=payload, body=json.dumps(payload).encode(), raw=reply)


def test_bodies_are_kept_up_to_the_limit_with_their_real_size(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", body_limit=100)
    big = tool_call(reply=b"r" * 500)
    small = tool_call(pad=1, reply=b"{}")
    assert len(small.body) < 100 < len(big.body)
    j.append([big, small])
    got_big, got_small = j.recent()
    assert got_big.body == big.body[:100] and got_big.request_bytes == len(big.body) and got_big.request_truncated
    assert got_big.response_body == b"r" * 100 and got_big.response_bytes == 500 and got_big.response_truncated
    assert got_big.payload is None and got_big.message_type == "tool-calls" and got_big.call_id == "call_L"
    assert got_small.body == small.body and got_small.request_bytes == len(small.body)
    assert not got_small.request_truncated and not got_small.response_truncated
    assert got_small.payload == small.payload


def test_limit_zero_keeps_no_body_but_every_size(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", body_limit=0)
    ex = tool_call(reply=b"r" * 50)
    empty = make_exchange(None, body=b"", raw=b"")
    j.append([ex, empty])
    got, got_empty = j.recent()
    assert got.body == b"" and got.request_bytes == len(ex.body) and got.request_truncated
    assert got.response_body == b"" and got.response_bytes == 50 and got.response_truncated
    assert got_empty.request_bytes == 0 and not got_empty.request_truncated and not got_empty.response_truncated


def test_a_body_the_proxy_held_only_in_part_stays_marked(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")  # no limit: what was held is kept whole
    ex = make_exchange(None, body=b"x" * 64, raw=b"{}", request_bytes=9_000_000, request_truncated=True)
    j.append([ex])
    got = j.recent()[0]
    assert got.body == b"x" * 64 and got.request_bytes == 9_000_000 and got.request_truncated


def test_a_request_refused_by_enforce_auth_keeps_headers_and_size_not_body(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3")
    ex = tool_call()
    ex.headers = [("Content-Type", "application/json"), ("X-Vapi-Secret", "wrong-guess"), ("X-Trace", "t1")]
    ex.auth = AuthResult("secret", False, "X-Vapi-Secret does not match")
    ex.error_kind, ex.error = "auth", "not forwarded: authentication failed"
    ex.record_reply(401, [("Content-Type", "application/json")], b'{"error":"unauthorized"}')
    j.append([ex], secrets=["the-real-secret"])
    got = j.recent()[0]
    assert got.body == b"" and got.request_bytes == len(ex.body) and got.request_truncated
    assert dict(got.headers)["X-Trace"] == "t1" and "wrong-guess" not in json.dumps(got.headers)
    assert got.status == 401 and got.error_kind == "auth" and got.auth == ex.auth


def test_beyond_max_size_the_oldest_rows_go(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", max_size=200_000)
    sent = [tool_call(pad=10_000) for _ in range(60)]  # ~600 kB in all
    for ex in sent:
        j.append([ex])
    assert j.used_bytes() <= 200_000
    kept = [ex.id for ex in j.recent(limit=1000)]
    assert 5 < len(kept) < 60
    assert kept == [ex.id for ex in sent[-len(kept) :]]  # the newest, in order
    j.append(sent[:0])  # nothing to write is nothing to do
    assert j.count() == len(kept)


def test_one_batch_larger_than_max_size_is_bounded_too(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", max_size=200_000)
    sent = [tool_call(pad=10_000) for _ in range(60)]
    j.append(sent)
    assert j.used_bytes() <= 200_000
    assert j.recent(1)[0].id == sent[-1].id and j.count() < 60


def test_a_row_larger_than_max_size_is_still_kept(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite3", max_size=50_000)
    j.append([tool_call(pad=1_000) for _ in range(5)])
    huge = tool_call(pad=200_000)
    j.append([huge])
    assert [ex.id for ex in j.recent()] == [huge.id]  # the newest stays, even alone over the bound


def test_a_journal_over_a_lowered_max_size_is_trimmed_at_the_first_write(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    first = Journal(path)
    first.append([tool_call(pad=10_000) for _ in range(50)])
    first.close()
    j = Journal(path, max_size=100_000)
    j.append([tool_call(pad=1)])
    assert j.used_bytes() <= 100_000 and j.count() < 50


_V1_SCHEMA = """
CREATE TABLE exchanges (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL, received_at REAL NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL,
    query TEXT NOT NULL, headers TEXT NOT NULL, masked_headers TEXT NOT NULL, body BLOB NOT NULL,
    message_type TEXT, call_id TEXT, reply_needed INTEGER NOT NULL, deadline_s REAL NOT NULL,
    forward_url TEXT NOT NULL, status INTEGER, response_headers TEXT NOT NULL,
    response_body BLOB NOT NULL, response_bytes INTEGER NOT NULL, response_truncated INTEGER NOT NULL,
    streamed INTEGER NOT NULL, duration_ms REAL, first_byte_ms REAL, error TEXT, error_kind TEXT,
    fallback INTEGER NOT NULL, auth TEXT, problems TEXT NOT NULL
);
CREATE INDEX exchanges_call ON exchanges(call_id);
CREATE INDEX exchanges_id ON exchanges(id);
PRAGMA user_version=1;
"""
_V1_ROW = (
    "INSERT INTO exchanges (id, received_at, method, path, query, headers, masked_headers, body, message_type, "
    "call_id, reply_needed, deadline_s, forward_url, status, response_headers, response_body, response_bytes, "
    "response_truncated, streamed, duration_ms, first_byte_ms, error, error_kind, fallback, auth, problems) "
    "VALUES ('ex_old_1', 1700000000.0, 'POST', '/', '', '[]', '[]', ?, 'status-update', 'call_v1', 0, 20.0, "
    "'http://127.0.0.1:3000/', 200, '[]', X'7B7D', 2, 0, 0, 3.0, 1.0, NULL, NULL, 0, NULL, '[]')"
)


def _v1_journal(path: Path) -> bytes:
    body = b'{"message": {"type": "status-update", "status": "in-progress", "call": {"id": "call_v1"}}}'
    with sqlite3.connect(path) as db:
        db.executescript(_V1_SCHEMA)
        db.execute(_V1_ROW, (body,))
    return body


def test_a_v1_journal_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    body = _v1_journal(path)
    inode = path.stat().st_ino
    j = Journal(path, create=False)  # even a reading command brings it to v2
    old = j.get("ex_old_1")
    assert old is not None and old.body == body and old.request_bytes == len(body) and not old.request_truncated
    assert old.message_type == "status-update" and old.payload["message"]["status"] == "in-progress"
    new = tool_call()
    j.append([new])
    assert [ex.id for ex in j.recent()] == ["ex_old_1", new.id]
    j.close()
    assert path.stat().st_ino == inode
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        columns = {r[1] for r in db.execute("PRAGMA table_info(exchanges)")}
        assert {"request_bytes", "request_truncated"} <= columns
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_events_reads_a_v1_journal(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    body = _v1_journal(path)
    r = run_cli("events", "--json", "--journal", str(path))
    assert r.returncode == 0, r.stderr
    rec = json.loads(r.stdout.strip())
    assert rec["id"] == "ex_old_1" and rec["request_bytes"] == len(body) and rec["call_id"] == "call_v1"


# -- through the real CLI ------------------------------------------------------------------------------


def _rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        query = "SELECT id, length(body) AS kept, request_bytes, request_truncated, headers FROM exchanges ORDER BY seq"
        return [dict(r) for r in db.execute(query)]


async def test_a_3mb_post_is_forwarded_whole_and_journaled_cut(
    fake_app: tuple[str, AppState], cli: Any, tmp_path: Path
) -> None:
    base, state = fake_app
    jpath = tmp_path / "journal.sqlite3"
    proc = cli("listen", base + "/big", "--port", "0", "--tunnel", "none", "--json", "--journal", str(jpath))
    ready = await asyncio.to_thread(proc.read_json_line)
    body = b'{"message": {"type": "status-update", "status": "in-progress", "pad": "' + b"a" * 3_000_000 + b'"}}'
    reply = await post(ready["local_url"], body)
    assert reply.status == 200 and reply.json() == {"size": len(body)}
    assert state.seen[-1]["size"] == len(body) and state.seen[-1]["tail"] == body[-16:]  # the app got it all
    line = await asyncio.to_thread(proc.read_json_line)
    assert line["event"] == "exchange" and line["request_bytes"] == len(body)
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    (row,) = _rows(jpath)
    assert row["kept"] == 1_000_000 and row["request_bytes"] == len(body) and row["request_truncated"] == 1
    shown = run_cli("show", "last", "--json", "--journal", str(jpath))
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["request_bytes"] == len(body)


async def test_a_small_journal_max_size_drops_the_oldest(
    fake_app: tuple[str, AppState], cli: Any, tmp_path: Path
) -> None:
    base, _ = fake_app
    jpath = tmp_path / "journal.sqlite3"
    proc = cli(
        "listen", base, "--port", "0", "--tunnel", "none", "--json", "--journal", str(jpath),
        "--journal-max-size", "300kB",
    )  # fmt: skip
    ready = await asyncio.to_thread(proc.read_json_line)
    ids = []
    for i in range(40):  # the echo app answers with the same 20 kB: ~40 kB a row, ~1.6 MB in all
        body = json.dumps({"n": i, "pad": "z" * 20_000}).encode()
        assert (await post(ready["local_url"], body)).body == body
        ids.append((await asyncio.to_thread(proc.read_json_line))["id"])
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    r = run_cli("events", "--json", "--limit", "1000", "--journal", str(jpath))
    kept = [json.loads(line)["id"] for line in r.stdout.splitlines()]
    assert 0 < len(kept) < 40 and kept == ids[-len(kept) :]  # the newest stay, the oldest went
    assert Journal(jpath, create=False).used_bytes() <= 300_000
    assert os.path.getsize(jpath) <= 600_000  # the file grows little past the bound (freed pages are reused)


async def test_a_request_refused_by_enforce_auth_is_journaled_without_its_body(
    fake_app: tuple[str, AppState], cli: Any, tmp_path: Path
) -> None:
    base, state = fake_app
    jpath = tmp_path / "journal.sqlite3"
    proc = cli(
        "listen", base, "--port", "0", "--tunnel", "none", "--json", "--journal", str(jpath),
        "--secret", "sk-right", "--enforce-auth",
    )  # fmt: skip
    ready = await asyncio.to_thread(proc.read_json_line)
    body = b'{"message": {"type": "status-update", "status": "PRIVATE-CONTENT"}}'
    reply = await post(ready["local_url"], body, {"X-Vapi-Secret": "sk-wrong", "X-Trace": "t9"})
    assert reply.status == 401 and state.seen == []
    await asyncio.to_thread(proc.read_json_line)
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    (row,) = _rows(jpath)
    assert row["kept"] == 0 and row["request_bytes"] == len(body) and row["request_truncated"] == 1
    assert "t9" in row["headers"] and "sk-wrong" not in row["headers"]
    assert b"PRIVATE-CONTENT" not in jpath.read_bytes()
