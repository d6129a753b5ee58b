"""`vapi-dev test` through the installed console script against real local apps: verdicts, exit codes,
bad fixtures, expectations, deadlines, resets, re-signing and masking."""

from __future__ import annotations

import json
from pathlib import Path

from tests.testing.apps import CALL, LEAKED_KEY, Running, edit_fixture, vapi_test, write_fixture
from vapi_dev.redact import MASK


def test_a_right_app_passes_every_exchange_in_order(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    r = vapi_test(str(tmp_path / "call.json"), "--against", f"{app.url}/right")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "call.json ... [100%]" in r.stdout
    assert "3 passed, 0 failed" in r.stdout
    sent = [json.loads(s["body"])["message"]["type"] for s in app.state.seen]
    assert sent == ["status-update", "tool-calls", "assistant-request"]  # the recorded order


def test_a_wrong_app_fails_with_the_exchange_the_problem_and_the_reply(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/wrong")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "call.json .FF [100%]" in r.stdout
    assert "FAILURES" in r.stdout and "call.json::1 tool-calls" in r.stdout
    assert "POST / → 200" in r.stdout and f"({app.url}/wrong)" in r.stdout
    assert "[tool-calls.results-not-array]" in r.stdout and "[assistant-request.invalid-shape]" in r.stdout
    assert '"results": "Sunny"' in r.stdout  # the reply body under the failure
    assert "1 passed, 2 failed" in r.stdout


def test_a_bad_fixture_is_reported_and_the_rest_still_run(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "good.json", CALL[:2])
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right")
    assert r.returncode == 2, r.stdout + r.stderr  # bad input, nothing failed
    assert "broken.json is not JSON" in r.stdout
    assert "other.json is neither a Vapi payload" in r.stdout
    assert "good.json .. [100%]" in r.stdout
    assert "2 passed, 0 failed, 2 bad files" in r.stdout
    failing = vapi_test(str(tmp_path), "--against", f"{app.url}/wrong")
    assert failing.returncode == 1  # a failed test outranks a bad file


def test_bad_input_exits_2_with_one_error_line(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    cases = [
        ([str(tmp_path / "missing.json"), "--against", app.url], "missing.json: no such file or directory"),
        ([str(tmp_path / "call.json")], "--against"),
        ([str(tmp_path / "call.json"), "--against", "ftp://x"], "is not an http(s) URL"),
        ([str(tmp_path / "call.json"), "--against", app.url, "--update"], "needs --snapshot"),
        (["--against", app.url], "give fixture files"),
        (["--samples", str(tmp_path), "--against", app.url], "--samples"),
        ([str(tmp_path), "--against", app.url, "--jobs", "0"], "--jobs"),
    ]
    for args, said in cases:
        r = vapi_test(*args)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert said in r.stdout + r.stderr, (args, r.stdout, r.stderr)
        assert "Traceback" not in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = vapi_test(str(empty), "--against", app.url)
    assert r.returncode == 2 and "holds no *.json fixture" in r.stdout


def test_a_reset_connection_and_nothing_listening_are_failures(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[1:2])
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/crash")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "✗ send: the request to" in r.stdout and "failed (" in r.stdout
    assert "no reply" in r.stdout
    from tests.support.net import free_port

    r = vapi_test(str(tmp_path), "--against", str(free_port()))
    assert r.returncode == 1 and "nothing is listening on" in r.stdout


def test_the_deadline_fails_a_late_reply_and_warns_over_70_percent(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[1:2])
    app.state.delay_s = 0.3
    late = vapi_test(str(tmp_path), "--against", f"{app.url}/late", "--deadline", "0.1")
    assert late.returncode == 1, late.stdout
    assert "✗ deadline:" in late.stdout and "[deadline.missed]" in late.stdout
    near = vapi_test(str(tmp_path), "--against", f"{app.url}/late", "--deadline", "0.4")
    assert near.returncode == 0, near.stdout  # a warning passes
    assert "1 passed, 0 failed, 1 warning" in near.stdout


def test_expectations_in_the_fixture(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, CALL[1:2])
    edit_fixture(
        f,
        0,
        expect={
            "status": 200,
            "json": {"results": [{"result": "Sunny, 21 C"}]},
            "paths": {"results[0].toolCallId": "call_Xq2v9ZkLm3Np", "$.results.0.result": {"regex": "^Sunny"}},
            "headers": {"content-type": {"regex": "json"}},
            "max_ms": 5000,
        },
    )
    ok = vapi_test(str(f), "--against", f"{app.url}/right")
    assert ok.returncode == 0, ok.stdout
    app.state.tool_result = "Rain, 12 C"
    edit_fixture(
        f,
        0,
        expect={
            "json": {"results": [{"result": "Sunny, 21 C"}]},
            "paths": {"results.0.result": {"regex": "^Sun"}},
            "headers": {"X-Missing": "x"},
            "status": 201,
        },
    )
    bad = vapi_test(str(f), "--against", f"{app.url}/right")
    assert bad.returncode == 1, bad.stdout
    out = bad.stdout
    assert "✗ status: expected status 201, got 200" in out
    assert "✗ json: the reply's JSON does not contain the expected subset" in out
    assert '-      "result": "Sunny, 21 C"' in out and '+      "result": "Rain, 12 C"' in out
    assert '✗ path results.0.result: expected matching /^Sun/, got "Rain, 12 C"' in out
    assert '✗ header X-Missing: expected "x", got (missing)' in out
    app.state.delay_s = 0.2
    edit_fixture(f, 0, expect={"max_ms": 50})
    slow = vapi_test(str(f), "--against", f"{app.url}/late")
    assert slow.returncode == 1 and "✗ latency: replied in" in slow.stdout and "over the expected 50 ms" in slow.stdout
    edit_fixture(f, 0, expect={"paths": {"x": {"regex": "("}}})
    broken = vapi_test(str(f), "--against", f"{app.url}/right")
    assert broken.returncode == 2 and "is not a regex" in broken.stdout


def test_an_expected_status_replaces_the_2xx_rule(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "unsigned.json"
    write_fixture(f, CALL[1:2])
    edit_fixture(f, 0, expect={"status": 401})
    r = vapi_test(str(f), "--against", f"{app.url}/hmac")
    assert r.returncode == 0, r.stdout  # the app refuses an unsigned request, as the fixture expects


def test_a_masked_hmac_fixture_is_signed_again_and_verified_by_the_app(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "signed.json"
    headers = [("Content-Type", "application/json"), ("x-signature", "abc123"), ("x-timestamp", "1700000000")]
    data = write_fixture(f, CALL[1:2], headers=headers)
    assert ["x-signature", MASK] in data["exchanges"][0]["headers"]  # export keeps the signature masked
    unsigned = vapi_test(str(f), "--against", f"{app.url}/hmac")
    assert unsigned.returncode == 2, unsigned.stdout
    assert "x-signature header(s) were masked on export" in unsigned.stdout and "--hmac-secret" in unsigned.stdout
    assert not app.state.seen  # nothing was sent
    secret = app.state.secret
    r = vapi_test(str(f), "--against", f"{app.url}/hmac", "--hmac-secret", secret)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signing again" in r.stdout
    got = app.state.seen[-1]["headers"]
    assert got["x-signature"] not in ("abc123", MASK) and got["x-timestamp"] != "1700000000"
    assert secret not in r.stdout + r.stderr


def test_secrets_and_control_characters_never_reach_the_output(app: Running, tmp_path: Path) -> None:
    f = tmp_path / "call.json"
    write_fixture(f, CALL[1:2])
    secret = app.state.secret
    junit = tmp_path / "out.xml"
    r = vapi_test(str(f), "--against", f"{app.url}/leak", "--secret", secret, "--junit", str(junit))
    j = vapi_test(str(f), "--against", f"{app.url}/leak", "--json", env={"VAPI_DEV_SECRET": secret})
    assert r.returncode == 1 and j.returncode == 1, r.stdout + j.stdout
    assert app.state.seen[0]["headers"]["X-Vapi-Secret"] == secret  # the app got it, and quotes it back
    for text in (r.stdout, r.stderr, j.stdout, j.stderr, junit.read_text()):
        assert secret not in text and LEAKED_KEY not in text
        assert "\x1b" not in text and "\x07" not in text
    assert "\\u001b[31mred" in r.stdout and MASK in r.stdout  # escaped (by JSON), not sent to the terminal


def test_show_json_records_and_bare_payloads_run_too(app: Running, tmp_path: Path) -> None:
    from vapi_dev.vapi.samples import sample

    (tmp_path / "payload.json").write_text(json.dumps(sample("tool-calls")))
    record = {
        "event": "exchange",
        "method": "POST",
        "path": "/",
        "query": "",
        "message_type": "assistant-request",
        "headers": [["Content-Type", "application/json"]],
        "request": sample("assistant-request"),
        "status": 200,
        "response": '{\n  "assistantId": "asst_123"\n}',
    }
    (tmp_path / "shown.json").write_text(json.dumps(record))
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right", "--snapshot")
    assert r.returncode == 1, r.stdout  # the payload recorded no reply to compare with
    assert "payload.json F" in r.stdout and "shown.json . [100%]" in r.stdout
    assert "the fixture recorded no reply to compare with; --update records this one" in r.stdout
    plain = vapi_test(str(tmp_path), "--against", f"{app.url}/right")
    assert plain.returncode == 0 and "2 passed, 0 failed" in plain.stdout


def test_against_reads_a_port_with_a_path_as_listen_reads_its_target(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    port = app.url.rsplit(":", 1)[1]
    r = vapi_test(str(tmp_path / "call.json"), "--against", f"{port}/right")  # localhost:PORT/right
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed, 0 failed" in r.stdout
    bad = vapi_test(str(tmp_path / "call.json"), "--against", "3000.5")
    assert bad.returncode == 2 and "ambiguous" in bad.stderr and "Traceback" not in bad.stderr
