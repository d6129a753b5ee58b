"""A secret value given to `listen` only on its command line stays masked when the journal is read later.

`events`, `show` and `export` run without that value: they read the masked copies the journal stored beside
the raw body, query string, forward URL and reply (where the value occurred), while `replay` still sends the
exact recorded bytes and `show --show-secrets` / `export --raw` show them.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest

from tests.support.apps import serve
from tests.support.background import AppState, LoopThread, make_app
from tests.support.cli import run_cli
from tests.support.exchanges import make_exchange
from tests.support.net import free_port
from vapi_dev.journal.store import SCHEMA_VERSION, Journal
from vapi_dev.redact import MASK

SECRET = "s3cretVALUE"
CALL = "call_after_run_1"
PAYLOAD = {
    "message": {
        "type": "tool-calls",
        "call": {"id": CALL},
        "toolCallList": [
            {"id": "tc1", "type": "function", "function": {"name": "lookup", "arguments": {"note": f"uses {SECRET}"}}}
        ],
    }
}
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()  # compact, as Vapi sends it
PATH_QS = f"/hook?x={SECRET}"


@dataclass
class Recorded:
    app_url: str
    state: AppState
    journal: Path


@pytest.fixture
def recorded(cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Recorded]:
    """One tool call through `listen --secret SECRET`: the value in an argument, the query and the reply."""
    for name in ("VAPI_DEV_SECRET", "VAPI_DEV_BEARER", "VAPI_DEV_HMAC_SECRET"):
        monkeypatch.delenv(name, raising=False)  # the later commands must not know the value
    lt = LoopThread()
    state = AppState(tool_result=f"done, {SECRET}")  # the reply carries it too
    runner, app_url = lt.run(serve(make_app(state), shutdown_timeout=0.5))
    journal = tmp_path / "journal.sqlite3"
    try:
        port = free_port()
        proc = cli(
            "listen", app_url, "--port", str(port), "--tunnel", "none", "--json", "--secret", SECRET,
            "--journal", str(journal),
        )  # fmt: skip
        assert proc.read_json_line()["event"] == "ready"
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}{PATH_QS}",
            data=BODY,
            headers={"Content-Type": "application/json", "X-Vapi-Secret": SECRET},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        while proc.read_json_line()["event"] != "exchange":
            pass
        code, _, err = proc.interrupt()  # a clean stop: the journal is flushed
        assert code in (0, 130), err
        assert [(s.path_qs, s.body) for s in state.seen] == [(PATH_QS, BODY)]
        yield Recorded(app_url, state, journal)
    finally:
        lt.run(runner.cleanup())
        lt.stop()


def vapi_dev(rec: Recorded, *args: str) -> str:
    r = run_cli(*args, "--journal", str(rec.journal), env={"NO_COLOR": "1", "COLUMNS": "200"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r.stdout + r.stderr


def _body(item: dict[str, Any]) -> Any:
    """A fixture body as JSON, whichever way export kept it."""
    return json.loads(base64.b64decode(item["body_base64"])) if "body_base64" in item else item["body_json"]


def test_events_show_and_export_mask_a_value_only_listen_knew(recorded: Recorded) -> None:
    for args in (["events"], ["events", "--json"], ["show", "last"], ["show", "--json", "last"]):
        out = vapi_dev(recorded, *args)
        assert SECRET not in out, f"{args} leaked the secret:\n{out}"
        assert MASK in out, args
    rec = json.loads(vapi_dev(recorded, "events", "--json").splitlines()[0])
    assert rec["query"] == f"x={MASK}" and rec["forward_url"].endswith(f"/hook?x={MASK}")
    assert rec["summary"].startswith(f"lookup(note=uses {MASK})")
    shown = json.loads(vapi_dev(recorded, "show", "--json", "last"))
    assert shown["request"]["message"]["toolCallList"][0]["function"]["arguments"] == {"note": f"uses {MASK}"}
    assert json.loads(shown["response"]) == {"results": [{"toolCallId": "tc1", "result": f"done, {MASK}"}]}

    out = vapi_dev(recorded, "export", "--call", CALL)
    assert SECRET not in out
    item = json.loads(out)["exchanges"][0]
    assert item["query"] == f"x={MASK}"
    assert item["body_json"]["message"]["toolCallList"][0]["function"]["arguments"] == {"note": f"uses {MASK}"}
    assert _body(item["reply"])["results"][0]["result"] == f"done, {MASK}"


def test_show_secrets_and_export_raw_keep_the_recorded_bytes(recorded: Recorded) -> None:
    out = vapi_dev(recorded, "show", "--show-secrets", "last")
    assert f"uses {SECRET}" in out and f"x={SECRET}" in out and f"done, {SECRET}" in out
    item = json.loads(run_cli("export", "--call", CALL, "--raw", "--journal", str(recorded.journal)).stdout)
    item = item["exchanges"][0]
    assert item["query"] == f"x={SECRET}" and _body(item) == PAYLOAD
    assert _body(item["reply"])["results"][0]["result"] == f"done, {SECRET}"


def test_replay_sends_the_exact_recorded_bytes_and_shows_them_masked(recorded: Recorded) -> None:
    out = vapi_dev(recorded, "replay", "last", "--secret", SECRET)
    assert [(s.path_qs, s.body) for s in recorded.state.seen] == [(PATH_QS, BODY), (PATH_QS, BODY)]
    assert SECRET not in out and f"/hook?x={MASK}" in out and "reply body: identical" in out
    out = vapi_dev(recorded, "replay", "last", "--to", recorded.app_url, "--secret", SECRET)
    assert recorded.state.seen[-1].path_qs == PATH_QS and recorded.state.seen[-1].body == BODY
    assert SECRET not in out


# -- the store itself: every form of a value, the body limit, and an early v2 file --------------------------

ODD = 'p@ss/w"rd é'  # a value whose JSON-escaped and URL-encoded forms differ from it


def _stored(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM exchanges ORDER BY seq")]


def test_each_form_of_a_value_is_masked_in_the_copies_and_kept_in_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    payload = {"message": {"type": "tool-calls", "toolCallList": [], "note": ODD}}
    body = json.dumps(payload).encode()  # ASCII-escaped: \" and \u00e9
    reply = json.dumps({"echo": ODD}, ensure_ascii=False).encode()
    ex = make_exchange(
        body=body,
        raw=reply,
        call_id="c1",
        path=f"/p/{quote(ODD, safe='')}",
        query=f"a={quote_plus(ODD)}",
        forward_url=f"http://127.0.0.1:9/p?a={quote(ODD, safe='')}",
    )
    plain = make_exchange(body=b'{"message": {"type": "status-update"}}')
    j = Journal(path)
    j.append([ex, plain], secrets=[ODD])
    raw = j.get(ex.id)
    masked = j.get(ex.id, masked=True)
    assert raw is not None and masked is not None
    assert (raw.body, raw.response_body, raw.path, raw.query) == (body, reply, ex.path, ex.query)
    assert raw.forward_url == ex.forward_url
    assert json.loads(masked.body)["message"]["note"] == MASK and json.loads(masked.response_body) == {"echo": MASK}
    assert (masked.path, masked.query, masked.forward_url) == (
        f"/p/{MASK}",
        f"a={MASK}",
        f"http://127.0.0.1:9/p?a={MASK}",
    )
    assert masked.payload["message"]["note"] == MASK  # what summaries read
    j.masked = True
    assert [e.body for e in j.recent()] == [masked.body, plain.body]
    assert j.by_call("c1")[0].body == masked.body and j.by_call("c1", masked=False)[0].body == body
    j.close()
    rows = _stored(path)
    assert rows[1]["masked_body"] is None and rows[1]["masked_query"] is None  # nothing to mask: NULL
    assert rows[1]["masked_response_body"] is None and rows[1]["masked_forward_url"] is None


def test_a_masked_copy_is_cut_like_the_raw_body(tmp_path: Path) -> None:
    body = b'{"note": "' + b"x" * 40 + SECRET.encode() + b'", "pad": "' + b"y" * 100 + b'"}'
    limit = body.index(SECRET.encode()) + 4  # the value straddles the cut
    j = Journal(tmp_path / "j.sqlite3", body_limit=limit)
    ex = make_exchange(body=body)
    j.append([ex], secrets=[SECRET])
    raw, masked = j.get(ex.id), j.get(ex.id, masked=True)
    assert raw is not None and masked is not None
    assert raw.body == body[:limit] and raw.request_truncated
    assert len(masked.body) <= limit and masked.request_truncated and SECRET[:4].encode() not in masked.body
    assert masked.body.startswith(body[: limit - 4])


def test_an_early_v2_journal_gains_the_masked_columns(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite3"
    j = Journal(path)
    old = make_exchange()
    j.append([old])
    j.close()
    with sqlite3.connect(path) as db:  # as the first v2 files were: without the masked_* columns
        for col in ("masked_path", "masked_query", "masked_body", "masked_forward_url", "masked_response_body"):
            db.execute(f"ALTER TABLE exchanges DROP COLUMN {col}")
    j = Journal(path)
    assert j.get(old.id, masked=True) is not None
    new = make_exchange(query=f"x={SECRET}")
    j.append([new], secrets=[SECRET])
    got = j.get(new.id, masked=True)
    assert got is not None and got.query == f"x={MASK}"
    j.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
