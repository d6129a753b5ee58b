"""`--snapshot` (with --ignore and the default ignore list) and `--update` rewriting recorded replies."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.testing.apps import CALL, LEAKED_KEY, TOOL_OK, Running, edit_fixture, vapi_test, write_fixture
from vapi_dev.journal.fixtures import decode_body
from vapi_dev.redact import MASK


def test_a_changed_reply_fails_the_snapshot_with_a_diff(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, CALL)
    same = vapi_test(str(f), "--against", f"{app.url}/right", "--snapshot")
    assert same.returncode == 0, same.stdout
    app.state.tool_result = "Rain, 12 C"
    changed = vapi_test(str(f), "--against", f"{app.url}/right", "--snapshot")
    assert changed.returncode == 1, changed.stdout
    assert "✗ snapshot: the reply differs from the recorded one" in changed.stdout
    assert '-      "result": "Sunny, 21 C",' in changed.stdout and '+      "result": "Rain, 12 C",' in changed.stdout
    assert "2 passed, 1 failed" in changed.stdout
    without = vapi_test(str(f), "--against", f"{app.url}/right")  # the contract still holds
    assert without.returncode == 0


def test_ids_and_timestamps_are_ignored_by_default_and_ignore_adds_paths(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, [("status-update", {"id": "old-id", "timestamp": 1.0, "counter": 0, "ok": True})])
    r = vapi_test(str(f), "--against", f"{app.url}/volatile", "--snapshot")
    assert r.returncode == 1, r.stdout
    assert '-  "counter": 0,' in r.stdout and '+  "counter": 1,' in r.stdout
    assert '"id": "<ignored>"' in r.stdout  # diff context: the ignored values are shown as ignored
    ok = vapi_test(str(f), "--against", f"{app.url}/volatile", "--snapshot", "--ignore", "counter")
    assert ok.returncode == 0, ok.stdout
    wild = vapi_test(str(f), "--against", f"{app.url}/volatile", "--snapshot", "--ignore", "**.count*")
    assert wild.returncode == 0, wild.stdout
    strict = vapi_test(
        str(f), "--against", f"{app.url}/volatile", "--snapshot", "--ignore", "counter", "--no-default-ignore"
    )
    assert strict.returncode == 1 and '-  "id": "old-id",' in strict.stdout


def test_update_rewrites_the_recorded_replies_and_keeps_the_rest(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, CALL)
    edit_fixture(f, 1, expect={"paths": {"results.0.toolCallId": "call_Xq2v9ZkLm3Np"}}, note="kept")
    before = json.loads(f.read_text())
    os.chmod(f, 0o640)
    app.state.tool_result = "Rain, 12 C"
    r = vapi_test(str(f), "--against", f"{app.url}/right", "--snapshot", "--update")
    assert r.returncode == 0, r.stdout
    assert "1 snapshot updated" in r.stdout
    after = json.loads(f.read_text())
    # kept as export keeps bodies: JSON when that gives the exact bytes back, else base64 (aiohttp's spacing)
    assert json.loads(decode_body(after["exchanges"][1]["reply"])) == {
        "results": [{"toolCallId": "call_Xq2v9ZkLm3Np", "result": "Rain, 12 C"}]
    }
    assert after["exchanges"][1]["reply"]["status"] == 200
    for key in ("expect", "note", "headers", "id", "received_at", "method", "path"):
        assert after["exchanges"][1][key] == before["exchanges"][1][key]
    assert decode_body(after["exchanges"][1]) == decode_body(before["exchanges"][1])  # the request
    assert after["exchanges"][0] == before["exchanges"][0]  # unchanged replies stay as recorded
    assert after["call_id"] == before["call_id"] and after["version"] == 1
    assert os.stat(f).st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["call.json"]  # no temporary file left
    again = vapi_test(str(f), "--against", f"{app.url}/right", "--snapshot")
    assert again.returncode == 0, again.stdout


def test_update_masks_the_new_reply_as_export_does(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, [("status-update", {})])
    r = vapi_test(str(f), "--against", f"{app.url}/leak", "--snapshot", "--update", "--secret", app.state.secret)
    assert r.returncode == 0, r.stdout  # an informational event acknowledged 200; its reply recorded
    text = f.read_text()
    assert LEAKED_KEY not in text and app.state.secret not in text
    reply = json.loads(text)["exchanges"][0]["reply"]["body_json"]  # masked: its JSON value, as export keeps it
    assert reply["apiKey"] == MASK and json.loads(text)["masked"] is True


def test_update_needs_a_fixture_file_to_write_to(app: Running, tmp_path: Path) -> None:
    from vapi_dev.vapi.samples import sample

    (tmp_path / "payload.json").write_text(json.dumps(sample("tool-calls")))
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right", "--snapshot", "--update")
    assert r.returncode == 2, r.stdout
    assert "a bare payload keeps no reply to update; export the call as a fixture" in r.stdout


def test_the_recorded_reply_of_export_is_the_snapshot(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", [("tool-calls", TOOL_OK)])
    data = json.loads((tmp_path / "call.json").read_text())
    assert json.loads(decode_body(data["exchanges"][0]["reply"])) == TOOL_OK  # as export writes it: nothing added
    assert vapi_test(str(tmp_path), "--against", f"{app.url}/right", "--snapshot").returncode == 0
