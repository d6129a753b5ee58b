"""Secrets are masked in every output, by one set of rules (#11, item 5), through the real CLI.

One recorded session (a listener with --secret, a tool call whose arguments, envelope, query string and
reply carry credentials, and a form body) is read back by every command; no credential may appear.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.apps import serve
from tests.support.background import LoopThread
from tests.support.cli import CliProcess
from tests.support.net import free_port
from vapi_dev.redact import MASK

SCRIPT = Path(sys.executable).with_name("vapi-dev")
SECRET = "S3cr3t-Val-4242"  # the listener's --secret, also quoted in a body and a query string
CALL = "call_masking_1"
PAYLOAD = {
    "message": {
        "type": "tool-calls",
        "call": {"id": CALL},
        "phoneNumber": {"provider": "twilio", "twilioAuthToken": "twilio-tok-111"},
        "toolCallList": [
            {
                "id": "tc1",
                "type": "function",
                "function": {
                    "name": "login",
                    "arguments": {
                        "user": "bob",
                        "password": "hunter2-pw",
                        "apiKey": "sk_live_222",
                        "note": f"is {SECRET}",
                    },
                },
            }
        ],
    }
}
QUERY = f"token=query-tok-333&x={SECRET}&v=1"
FORM = f"user=bob&password=form-pw-444&api_key=form-key-555&note={SECRET}"
# Every credential above and in the app's replies; none may be printed or exported.
LEAKS = (
    SECRET,
    "twilio-tok-111",
    "hunter2-pw",
    "sk_live_222",
    "query-tok-333",
    "form-pw-444",
    "form-key-555",
    "reply-tok-666",
    "reply-pw-777",
)


def make_app() -> web.Application:
    """Answers a tool call with the secret in its result and credential-like fields; echoes anything else."""

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            msg = json.loads(body)["message"]
        except (ValueError, KeyError, TypeError):
            return web.Response(body=body, content_type=request.content_type)
        results = [{"toolCallId": c["id"], "result": f"ok {SECRET}"} for c in msg.get("toolCallList", [])]
        return web.json_response({"results": results, "accessToken": "reply-tok-666", "password": "reply-pw-777"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def vapi_dev(*args: str, home: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, to completion."""
    exe = str(SCRIPT) if SCRIPT.exists() else shutil.which("vapi-dev")
    if exe is None:
        pytest.skip("the vapi-dev console script is not installed in this environment")
    full = {**os.environ, "VAPI_DEV_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200", **(env or {})}
    for name in ("VAPI_DEV_SECRET", "VAPI_DEV_BEARER", "VAPI_DEV_HMAC_SECRET"):
        if name not in (env or {}):
            full.pop(name, None)
    return subprocess.run([exe, *args], capture_output=True, text=True, env=full, timeout=60)


def assert_masked(text: str, *, allow: tuple[str, ...] = ()) -> None:
    assert "Traceback" not in text
    leaked = [s for s in LEAKS if s in text and s not in allow]
    assert not leaked, f"leaked {leaked}:\n{text}"


def post_form(listen_url: str) -> None:
    req = urllib.request.Request(
        f"{listen_url}/form?{QUERY}",
        data=FORM.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Vapi-Secret": SECRET},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


@dataclass
class Recorded:
    home: Path
    app_url: str
    payload_file: Path
    stream_json: str  # what `listen --json -v` printed (stdout and stderr)
    stream_text: str  # what `listen -v` printed
    trigger_out: str


def listen(app_url: str, home: Path, *extra: str) -> tuple[CliProcess, str]:
    port = free_port()
    env = {"VAPI_DEV_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}
    proc = CliProcess(["listen", app_url, "--port", str(port), "--tunnel", "none", "--secret", SECRET, *extra], env)
    return proc, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    home = tmp_path_factory.mktemp("masking")
    payload_file = home / "payload.json"
    payload_file.write_text(json.dumps(PAYLOAD))
    lt = LoopThread()
    runner, app_url = lt.run(serve(make_app(), shutdown_timeout=0.5))
    try:
        # 1. --json -v: NDJSON records with bodies
        proc, url = listen(app_url, home, "--json", "-v")
        try:
            assert proc.read_json_line()["event"] == "ready"
            trig = vapi_dev(
                "trigger", "--file", str(payload_file), "--to", f"{url}/tools?{QUERY}", "--secret", SECRET, home=home
            )
            assert trig.returncode == 0, trig.stderr
            post_form(url)
            lines = [json.dumps(proc.read_json_line()) for _ in range(2)]
        finally:
            _, out, err = proc.interrupt()
        stream_json = "\n".join(lines) + "\n" + out + err
        # 2. the human stream with -v
        proc, url = listen(app_url, home, "-v", "--color", "never")
        try:
            proc.read_stdout_until("Waiting for events")
            r = vapi_dev(
                "trigger", "--file", str(payload_file), "--to", f"{url}/tools?{QUERY}", "--secret", SECRET, home=home
            )
            assert r.returncode == 0, r.stderr
            post_form(url)
            seen = proc.read_stdout_until("POST /form")
        finally:
            _, out, err = proc.interrupt()
        yield Recorded(home, app_url, payload_file, stream_json, seen + out + err, trig.stdout + trig.stderr)
    finally:
        lt.run(runner.cleanup())
        lt.stop()


def test_stream_json_and_trigger_are_masked(recorded: Recorded) -> None:
    assert_masked(recorded.stream_json)
    records = [
        json.loads(line) for line in recorded.stream_json.splitlines() if line.startswith('{"event": "exchange"')
    ]
    tool, form = records[0], records[1]
    assert tool["query"] == f"token={MASK}&x={MASK}&v=1" and MASK in tool["forward_url"]
    assert f"password={MASK}" in tool["summary"] and f"apiKey={MASK}" in tool["summary"]
    assert tool["request_body"]["message"]["phoneNumber"]["twilioAuthToken"] == MASK
    assert tool["response_body"]["accessToken"] == MASK
    assert form["request_body"] == f"user=bob&password={MASK}&api_key={MASK}&note={MASK}"
    assert_masked(recorded.trigger_out)
    assert "ok " + MASK in recorded.trigger_out  # the reply is shown, masked


def test_stream_text_is_masked(recorded: Recorded) -> None:
    assert_masked(recorded.stream_text)
    assert f"login(user=bob, password={MASK}, apiKey={MASK}, note=is {MASK})" in recorded.stream_text
    assert f"POST /form?token={MASK}&x={MASK}&v=1" in recorded.stream_text
    assert f"user=bob&password={MASK}&api_key={MASK}&note={MASK}" in recorded.stream_text  # the -v form body


def test_events_and_show_are_masked(recorded: Recorded) -> None:
    env = {"VAPI_DEV_SECRET": SECRET}  # the journal commands mask the values listen reads from the environment
    for args in (["events"], ["events", "--json"]):
        r = vapi_dev(*args, home=recorded.home, env=env)
        assert r.returncode == 0, r.stderr
        assert_masked(r.stdout + r.stderr)
    ids = [json.loads(line)["id"] for line in vapi_dev("events", "--json", home=recorded.home).stdout.splitlines()]
    assert len(ids) == 4
    for ex_id in ids:
        for extra in ([], ["--json"]):
            r = vapi_dev("show", ex_id, *extra, home=recorded.home, env=env)
            assert r.returncode == 0, r.stderr
            assert_masked(r.stdout + r.stderr)
        # without the value in the environment, every credential found by name is still masked
        r = vapi_dev("show", ex_id, home=recorded.home)
        assert_masked(r.stdout, allow=(SECRET,))
    r = vapi_dev("show", ids[0], home=recorded.home, env=env)
    assert f'"accessToken": "{MASK}"' in r.stdout and f'"twilioAuthToken": "{MASK}"' in r.stdout  # the reply too
    r = vapi_dev("show", ids[0], "--show-secrets", home=recorded.home)
    assert "hunter2-pw" in r.stdout and "reply-pw-777" in r.stdout  # --show-secrets keeps working


def test_export_masks_by_default_and_raw_warns(recorded: Recorded, tmp_path: Path) -> None:
    env = {"VAPI_DEV_SECRET": SECRET}
    r = vapi_dev("export", "--call", CALL, home=recorded.home, env=env)
    assert r.returncode == 0, r.stderr
    assert_masked(r.stdout + r.stderr)
    fixture = json.loads(r.stdout)
    assert fixture["masked"] is True and len(fixture["exchanges"]) == 2
    args = fixture["exchanges"][0]["body_json"]["message"]["toolCallList"][0]["function"]["arguments"]
    assert args == {"user": "bob", "password": MASK, "apiKey": MASK, "note": f"is {MASK}"}
    assert fixture["exchanges"][0]["query"] == f"token={MASK}&x={MASK}&v=1"

    masked = tmp_path / "masked.json"
    masked.write_text(r.stdout)  # still a fixture: trigger sends it again (masked values, re-signed)
    again = vapi_dev("trigger", "--file", str(masked), "--to", recorded.app_url, "--secret", SECRET, home=tmp_path)
    assert again.returncode == 0 and again.stdout.count("→ tool-calls  200") == 2, again.stdout + again.stderr

    raw = vapi_dev("export", "--call", CALL, "--raw", home=recorded.home, env=env)
    assert raw.returncode == 0 and "warning: --raw" in raw.stderr and "warning" not in raw.stdout
    assert "masked" not in json.loads(raw.stdout)
    assert "hunter2-pw" in raw.stdout or "hunter2-pw" in _decoded_bodies(raw.stdout)


def _decoded_bodies(text: str) -> str:
    import base64

    return " ".join(
        base64.b64decode(e["body_base64"]).decode() for e in json.loads(text)["exchanges"] if "body_base64" in e
    )


def test_replay_and_trigger_errors_are_masked(recorded: Recorded) -> None:
    r = vapi_dev("replay", "1", "--secret", SECRET, home=recorded.home)
    assert r.returncode == 0, r.stderr
    assert_masked(r.stdout + r.stderr)
    assert MASK in r.stdout  # the reply diff and the target URL, masked
    dead = f"http://127.0.0.1:{free_port()}"
    r = vapi_dev("replay", "1", "--secret", SECRET, "--to", dead, home=recorded.home)
    assert r.returncode == 1 and "nothing is listening" in r.stderr
    assert_masked(r.stdout + r.stderr)
    assert f"token={MASK}" in r.stderr
    r = vapi_dev("trigger", "tool-calls", "--to", f"{dead}/t?{QUERY}", "--secret", SECRET, home=recorded.home)
    assert r.returncode == 1 and "nothing is listening" in r.stderr
    assert_masked(r.stdout + r.stderr)
