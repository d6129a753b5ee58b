"""A call captured by a real listener and written by `vapi-dev export` is a test suite as it is."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.background import listener_in_thread
from tests.testing.apps import SCRIPT, app_running, vapi_test


def test_an_exported_call_runs_as_it_is_and_its_replies_are_the_snapshot(tmp_path: Path) -> None:
    import subprocess

    journal, out = tmp_path / "journal.db", tmp_path / "call.json"
    with app_running() as app:
        with listener_in_thread(app.loop, f"{app.url}/right", journal) as listen_url:
            sent = subprocess.run(
                [str(SCRIPT), "trigger", "call", "--call-id", "call_exported", "--to", listen_url],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert sent.returncode == 0, sent.stdout + sent.stderr
        exported = subprocess.run(
            [str(SCRIPT), "export", "--call", "call_exported", "--journal", str(journal), "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert exported.returncode == 0, exported.stderr
        data = json.loads(out.read_text())
        assert len(data["exchanges"]) == 8 and data["masked"] is True
        before = len(app.state.seen)
        r = vapi_test(str(out), "--against", f"{app.url}/right", "--snapshot")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "8 passed, 0 failed" in r.stdout
        sent_types = [json.loads(s["body"])["message"]["type"] for s in app.state.seen[before:]]
        assert sent_types == [e["message_type"] for e in data["exchanges"]]  # the call's order
        app.state.tool_result = "Cloudy"
        changed = vapi_test(str(out), "--against", f"{app.url}/right", "--snapshot")
        assert changed.returncode == 1 and "call.json::5 tool-calls" in changed.stdout
