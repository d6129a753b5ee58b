"""replay: recorded requests reach the app again with identical bytes, re-signed, compared and checked."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.background import app_in_thread, listener_in_thread
from tests.support.cli_runner import invoke
from tests.support.exchanges import make_exchange
from vapi_dev.exchange import Exchange
from vapi_dev.journal.store import Journal
from vapi_dev.vapi.auth import AuthConfig, verify

EDITOR = """
import json, sys
mode, path = sys.argv[1], sys.argv[2]
text = open(path).read()
if mode == "oslo":
    data = json.loads(text)
    data["message"]["toolCallList"][0]["function"]["arguments"] = {"city": "Oslo"}
    text = json.dumps(data)
elif mode == "empty":
    text = "  \\n"
elif mode == "fail":
    sys.exit(3)
open(path, "w").write(text)
"""


def editor(tmp_path: Path, mode: str) -> dict[str, str]:
    script = tmp_path / "editor.py"
    script.write_text(EDITOR)
    return {"EDITOR": f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {mode}", "VISUAL": ""}


def test_replay_sends_identical_bytes_and_compares(tmp_path: Path) -> None:
    jpath = tmp_path / "j.sqlite3"
    with app_in_thread() as (url, state, lt):
        with listener_in_thread(lt, url + "/hook", jpath) as listen_url:
            code, _, err = invoke("trigger", "tool-calls", "--to", listen_url + "/tools?v=2", "--secret", "abc")
            assert code == 0, err
        original = state.seen[0]
        recorded = Journal(jpath).get("last")
        assert recorded is not None and recorded.body == original.body

        state.seen.clear()
        code, out, err = invoke("replay", "last", "--journal", str(jpath), "--secret", "abc")
        assert code == 0, err
        again = state.seen[0]
        assert again.body == original.body  # byte for byte
        assert again.path_qs == original.path_qs  # the recorded forward target
        kept = {k.lower(): v for k, v in again.headers}
        assert kept["content-type"] == "application/json"
        result = verify(AuthConfig(secret="abc"), method="POST", url=url, headers=again.headers, body=again.body)
        assert result is not None and result.ok  # re-signed, not the masked value
        assert "identical" in out and "reply contract: ok" in out and "abc" not in out

        state.tool_result = "Rainy"
        code, out, err = invoke("replay", recorded.id, "--journal", str(jpath), "--secret", "abc")
        assert code == 0, err
        assert '-      "result": "Sunny, 21 C"' in out and '+      "result": "Rainy"' in out
        assert all("••••" not in v for _, v in state.seen[-1].headers)
        code, _, err = invoke("replay", recorded.id, "--journal", str(jpath))
        assert code == 1 and "--secret" in err  # masked headers are not re-sent

        state.tool_result = "line one\nline two"  # breaks Vapi's tool reply rules
        code, out, _ = invoke("replay", "last", "--journal", str(jpath), "--secret", "abc")
        assert code == 1 and "problems" in out

        state.seen.clear()
        state.tool_result = "Sunny, 21 C"
        code, _, err = invoke("replay", "last", "--journal", str(jpath), "--to", url, "--secret", "abc")
        assert code == 0, err
        assert state.seen[0].path_qs == "/tools?v=2" and state.seen[0].body == original.body


def test_replay_edit(tmp_path: Path) -> None:
    jpath = tmp_path / "j.sqlite3"
    with app_in_thread() as (url, state, lt):
        with listener_in_thread(lt, url, jpath) as listen_url:
            assert invoke("trigger", "tool-calls", "--to", listen_url)[0] == 0
        original = state.seen[0].body
        state.seen.clear()
        code, _, err = invoke("replay", "last", "--edit", "--journal", str(jpath), env=editor(tmp_path, "oslo"))
        assert code == 0, err
        assert json.loads(state.seen[0].body)["message"]["toolCallList"][0]["function"]["arguments"] == {"city": "Oslo"}
        code, _, err = invoke("replay", "last", "--edit", "--journal", str(jpath), env=editor(tmp_path, "same"))
        assert code == 0 and "unchanged" in err and state.seen[-1].body == original
        n = len(state.seen)
        code, _, err = invoke("replay", "last", "--edit", "--journal", str(jpath), env=editor(tmp_path, "empty"))
        assert code == 1 and "empty; nothing was sent" in err
        code, _, err = invoke("replay", "last", "--edit", "--journal", str(jpath), env=editor(tmp_path, "fail"))
        assert code == 1 and "exited with status 3" in err
        assert len(state.seen) == n


def test_replay_plain_bytes_and_errors(tmp_path: Path) -> None:
    jpath = tmp_path / "j.sqlite3"
    body = b"\x00\xff not json \r\n"
    with app_in_thread() as (url, state, _):
        ex = make_exchange(
            None,
            method="PUT",
            path="/raw",
            headers=[("Content-Type", "application/octet-stream")],
            body=body,
            took_s=0,
            forward_url=url + "/raw",
        )
        journal = Journal(jpath)
        journal.append([ex])
        code, _, err = invoke("replay", ex.id, "--journal", str(jpath))
        assert code == 0, err
        assert state.seen[0].method == "PUT" and state.seen[0].body == body
    code, _, err = invoke("replay", "last", "--journal", str(jpath))  # the app is gone now
    assert code == 1 and "nothing is listening" in err and "Traceback" not in err
    code, _, err = invoke("replay", "ex_missing", "--journal", str(jpath))
    assert code == 2 and "`vapi-dev events`" in err
    ex2 = Exchange.begin("POST", "/", "", [], b"{}")
    journal.append([ex2])
    code, _, err = invoke("replay", ex2.id, "--journal", str(jpath))
    assert code == 2 and "pass --to" in err
    code, _, err = invoke("replay", "last", "--journal", str(jpath), "--to", "ftp://nowhere")
    assert code == 2


def _script(
    *args: str, home: Path, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    """The installed console script, to completion: (exit code, stdout, stderr)."""
    exe = Path(sys.executable).with_name("vapi-dev")
    full = {**os.environ, "VAPI_DEV_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    r = subprocess.run([str(exe), *args], capture_output=True, env=full, timeout=60, input=stdin)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def test_replay_of_a_cut_body_needs_the_body(tmp_path: Path) -> None:
    kept = b"x" * 1_000_000  # the journal kept the first 1 MB of a 200 MB upload
    with app_in_thread() as (url, state, _):
        ex = make_exchange(
            None,
            path="/upload",
            headers=[("Content-Type", "application/octet-stream")],
            body=kept,
            raw=b"ok" * 600_000,
            forward_url=url + "/upload",
            request_bytes=200_000_000,
            request_truncated=True,
            response_bytes=5_000_000,
            response_truncated=True,
        )
        Journal(tmp_path / "journal.sqlite3").append([ex])
        code, out, err = _script("replay", ex.id, home=tmp_path)
        assert code == 1 and not state.seen and "Traceback" not in err
        assert "cut in the journal (first 1.0 MB of 200.0 MB kept)" in err and "--body-file FILE" in err
        assert err.count(".") <= 4  # one sentence (the sizes carry the other dots)

        code, out, err = _script("replay", ex.id, "--edit", home=tmp_path, env=editor(tmp_path, "same"))
        assert code == 1 and "only the first part" in err and not state.seen

        whole = tmp_path / "whole.bin"
        whole.write_bytes(b"the whole body")
        code, out, err = _script("replay", ex.id, "--body-file", str(whole), home=tmp_path)
        assert code == 0, err
        assert state.seen[-1].body == b"the whole body" and state.seen[-1].path_qs == "/upload"
        code, out, err = _script("replay", ex.id, "--body-file", "-", home=tmp_path, stdin=b"from stdin")
        assert code == 0 and state.seen[-1].body == b"from stdin", err
        code, _, err = _script("replay", ex.id, "--body-file", str(tmp_path / "missing"), home=tmp_path)
        assert code == 2 and "cannot read --body-file" in err

    code, out, err = _script("show", ex.id, home=tmp_path)
    assert code == 0, err
    assert "body: first 1.0 MB of 200.0 MB kept" in out  # the request
    assert "body: first 1.2 MB of 5.0 MB kept" in out  # the reply
    code, out, _ = _script("show", ex.id, "--json", home=tmp_path)
    record = json.loads(out)
    assert record["request_truncated"] is True and record["request_bytes"] == 200_000_000
