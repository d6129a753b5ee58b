"""`vapi-dev test` given hostile fixtures, options and replies: what cannot be sent is a bad file (never a
traceback), a recorded path never changes the host, secrets in --start and --against stay masked, a huge
reply is refused past a bound and long lines are cut, a snapshot tells true from 1, --update follows links."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from tests.testing.apps import CALL, Running, vapi_test, write_fixture
from tests.testing.test_plugin import project, pytest_in  # noqa: F401 - the project fixture
from vapi_dev.journal.fixtures import Request, decode_body
from vapi_dev.redact import Masker
from vapi_dev.resend import target_url
from vapi_dev.testing.load import Case
from vapi_dev.testing.run import Options, run_case
from vapi_dev.vapi.auth import AuthConfig


def _one_exchange(file: Path, **item: object) -> None:
    base = {"method": "POST", "path": "/", "body_json": {"message": {"type": "status-update"}}}
    file.write_text(json.dumps({"version": 1, "exchanges": [base | item]}))


def test_a_request_that_cannot_be_sent_as_it_is_is_a_bad_file_and_the_rest_run(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "good.json", CALL[:1])
    _one_exchange(tmp_path / "method.json", method="GE T")
    _one_exchange(tmp_path / "crlf.json", headers=[["X-A", "a\r\nInjected: 1"]])
    _one_exchange(tmp_path / "name.json", headers=[["X A", "v"]])
    _one_exchange(tmp_path / "path.json", path="@evil.example.com/x")
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right")
    assert "unexpected" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 2, r.stdout + r.stderr
    assert "method.json: exchange 0's method 'GE T' is not an HTTP method" in r.stdout
    assert "crlf.json: exchange 0's header 'X-A' has a control character in its value" in r.stdout
    assert "name.json: exchange 0's header name 'X A' is not a header name" in r.stdout
    assert "path.json: exchange 0's path '@evil.example.com/x' does not start with /" in r.stdout
    assert "good.json . [100%]" in r.stdout and "1 passed, 0 failed, 4 bad files" in r.stdout
    assert len(app.state.seen) == 1  # nothing of the bad files was sent


def test_a_recorded_path_never_changes_the_host() -> None:
    assert target_url("http://127.0.0.1:3000", "@evil.example.com/x", "") == "http://127.0.0.1:3000/@evil.example.com/x"
    assert target_url("3000", "x", "a=1") == "http://127.0.0.1:3000/x?a=1"
    assert target_url("3000", "", "") == "http://127.0.0.1:3000/"


def test_a_credential_no_header_can_carry_is_bad_input(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right", "--bearer", "tok\nInjected: 1")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "unexpected" not in r.stderr and "--bearer has a control character" in r.stderr
    assert "tok" not in r.stderr
    assert not app.state.seen


def test_a_request_aiohttp_refuses_is_a_send_failure_not_a_crash(app: Running) -> None:
    """The safety net under load's checks: whatever aiohttp will not write fails that case alone."""
    req = Request("POST", "/", "", [("X-A", "a\nb")], b"{}", "")
    opts = Options(app.url, AuthConfig(), Masker())
    out = asyncio.run(run_case(Case("f.json", 0, req), opts))
    assert not out.passed and out.failures[0].what == "send"
    assert "could not be sent" in out.failures[0].message


def test_secrets_in_start_and_in_the_url_are_masked(app: Running, tmp_path: Path) -> None:
    from tests.support.net import free_port

    write_fixture(tmp_path / "call.json", CALL[:1])
    r = vapi_test(
        str(tmp_path),
        "--against",
        str(free_port()),
        "--secret",
        "hunter2-start",
        "--start",
        "echo up; API_TOKEN=tok-in-cmd exit 3 # hunter2-start",
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "exited with status 3" in r.stderr
    assert "hunter2-start" not in r.stderr + r.stdout and "tok-in-cmd" not in r.stderr + r.stdout
    assert r.stderr.index("error:") < r.stderr.index("up")  # the sentence first, then the app's output
    write_fixture(tmp_path / "call.json", CALL[1:2])
    url = app.url.replace("http://", "http://admin:pw-in-url-1@")
    junit = tmp_path / "out.xml"
    u = vapi_test(str(tmp_path / "call.json"), "--against", f"{url}/wrong", "--junit", str(junit), "--snapshot")
    j = vapi_test(str(tmp_path / "call.json"), "--against", f"{url}/crash", "--json")
    assert u.returncode == 1 and j.returncode == 1, u.stdout + j.stdout
    for text in (u.stdout, u.stderr, j.stdout, j.stderr, junit.read_text()):
        assert "pw-in-url-1" not in text
    assert all("admin:" in text for text in (u.stdout, j.stdout, junit.read_text()))


def test_a_reply_over_the_bound_is_not_read_whole(app: Running) -> None:
    app.state.text = "x" * 5000
    req = Request("POST", "/", "", [("Content-Type", "application/json")], b'{"message":{}}', "")
    opts = Options(f"{app.url}/text", AuthConfig(), Masker(), max_reply_bytes=4000)
    out = asyncio.run(run_case(Case("f.json", 0, req), opts))
    assert not out.passed and out.failures[0].what == "send", out.failures
    assert "over the 4 kB limit on a reply" in out.failures[0].message
    app.state.text = "x" * 4000
    assert asyncio.run(run_case(Case("f.json", 0, req), opts)).passed


def test_long_lines_of_a_reply_are_cut(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[1:2])
    app.state.text = "y" * 300_000
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/text", "--snapshot")
    assert r.returncode == 1, r.stdout
    assert "yyyy…" in r.stdout
    assert max(len(line) for line in r.stdout.splitlines()) < 3000


def test_a_snapshot_tells_true_from_1(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, [("status-update", {"ok": True, "n": 1.0})])
    app.state.reply = {"ok": 1, "n": 1}
    assert vapi_test(str(f), "--against", f"{app.url}/json").returncode == 0  # no contract is broken
    r = vapi_test(str(f), "--against", f"{app.url}/json", "--snapshot")
    assert r.returncode == 1, r.stdout
    assert '-  "ok": true' in r.stdout and '+  "ok": 1' in r.stdout
    app.state.reply = {"ok": True, "n": 1}  # 1 and 1.0 are the same JSON number
    assert vapi_test(str(f), "--against", f"{app.url}/json", "--snapshot").returncode == 0


def test_update_through_a_symlink_rewrites_the_file_it_points_to(app: Running, tmp_path: Path) -> None:
    real = tmp_path / "store" / "call.json"
    real.parent.mkdir()
    write_fixture(real, CALL[1:2])
    link = tmp_path / "tests" / "call.json"
    link.parent.mkdir()
    os.symlink(real, link)
    app.state.tool_result = "Rain, 12 C"
    r = vapi_test(str(link), "--against", f"{app.url}/right", "--snapshot", "--update")
    assert r.returncode == 0 and "1 snapshot updated" in r.stdout, r.stdout
    assert link.is_symlink()
    assert b"Rain, 12 C" in decode_body(json.loads(real.read_text())["exchanges"][0]["reply"])


def test_the_plugin_refuses_a_bad_against_once(project: Path) -> None:  # noqa: F811
    r = pytest_in(project, "--vapi-fixtures", "vapi", "--vapi-against", "ftp://x")
    assert r.returncode == 4, r.stdout + r.stderr
    assert "is not an http(s) URL or port" in r.stderr and "Traceback" not in r.stdout + r.stderr


@pytest.mark.parametrize("name", ["VAPI_DEV_BEARER"])
def test_the_plugin_refuses_a_credential_no_header_can_carry(project: Path, name: str) -> None:  # noqa: F811
    r = pytest_in(project, "--vapi-fixtures", "vapi", "--vapi-against", "3000", env={name: "a\nb"})
    assert r.returncode == 4, r.stdout + r.stderr
    assert "has a control character" in r.stderr and "Traceback" not in r.stdout + r.stderr
