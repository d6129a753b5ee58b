"""trigger, events, show and export through typer's CliRunner, against real local servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.background import app_in_thread, listener_in_thread
from tests.support.cli_runner import invoke
from vapi_dev.journal.store import Journal
from vapi_dev.vapi.auth import AuthConfig, verify
from vapi_dev.vapi.samples import SAMPLE_TYPES


def test_trigger_list() -> None:
    code, out, _ = invoke("trigger", "--list")
    assert code == 0
    for t in SAMPLE_TYPES:
        assert t in out
    assert "yes (7.5 s)" in out  # assistant-request waits, with its fixed deadline


def test_trigger_every_type_reaches_the_app_signed() -> None:
    with app_in_thread() as (url, state, _):
        for t in SAMPLE_TYPES:
            code, out, err = invoke("trigger", t, "--to", url, "--call-id", "c-1", "--secret", "s3cr3t", "--no-check")
            assert code == 0, err
            assert t in out and "200" in out
        assert len(state.seen) == len(SAMPLE_TYPES)
        for t, seen in zip(SAMPLE_TYPES, state.seen, strict=True):
            payload = json.loads(seen.body)
            assert payload["message"]["type"] == t and payload["message"]["call"]["id"] == "c-1"
            assert dict(seen.headers)["Content-Type"] == "application/json"
            assert seen.method == "POST" and seen.path_qs == "/"
            result = verify(AuthConfig(secret="s3cr3t"), method="POST", url=url, headers=seen.headers, body=seen.body)
            assert result is not None and result.ok
        assert "s3cr3t" not in out


def test_trigger_set_hmac_and_exact_url() -> None:
    with app_in_thread() as (url, state, _):
        code, out, err = invoke(
            "trigger",
            "tool-calls",
            "--to",
            url + "/tools?x=1",
            "--set",
            'message.toolCallList.0.function.arguments={"city":"Oslo"}',
            "--set",
            "message.toolCallList.0.id=tc-9",
            env={"VAPI_DEV_HMAC_SECRET": "hm"},
        )
        assert code == 0, err
        assert '"toolCallId": "tc-9"' in out and "Sunny" in out
        seen = state.seen[0]
        assert seen.path_qs == "/tools?x=1"
        assert json.loads(seen.body)["message"]["toolCallList"][0]["function"]["arguments"] == {"city": "Oslo"}
        result = verify(
            AuthConfig(hmac_secret="hm"), method="POST", url=url + "/tools?x=1", headers=seen.headers, body=seen.body
        )
        assert result is not None and result.ok, result


def test_trigger_call_plays_the_whole_call() -> None:
    with app_in_thread() as (url, state, _):
        code, _out, err = invoke("trigger", "call", "--to", url, "--call-id", "call-xyz")
        assert code == 0, err
        types = [json.loads(s.body)["message"]["type"] for s in state.seen]
        assert types == [
            "status-update",
            "status-update",
            "speech-update",
            "transcript",
            "conversation-update",
            "tool-calls",
            "status-update",
            "end-of-call-report",
        ]
        assert {json.loads(s.body)["message"]["call"]["id"] for s in state.seen} == {"call-xyz"}


def test_trigger_errors_are_one_sentence(tmp_path: Path) -> None:
    code, _, err = invoke("trigger", "status-update", "--to", "http://127.0.0.1:1")
    assert code == 1 and "nothing is listening on http://127.0.0.1:1" in err and "Traceback" not in err
    code, _, err = invoke("trigger", "no-such-type")
    assert code == 2 and "trigger --list" in err
    code, _, err = invoke("trigger")
    assert code == 2 and "trigger --list" in err
    code, _, err = invoke("trigger", "hang", "--set", "nonsense", "--to", "http://127.0.0.1:1")
    assert code == 2 and "PATH=VALUE" in err
    code, _, err = invoke("trigger", "hang", "--to", "ftp://x")
    assert code == 2 and "not an http(s) URL" in err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = invoke("trigger", "--file", str(bad))
    assert code == 2 and "not JSON" in err
    code, _, err = invoke("trigger", "--file", str(tmp_path / "missing.json"))
    assert code == 2 and "cannot read" in err


def test_pipeline_journal_events_show_export_and_trigger_file(tmp_path: Path) -> None:
    """trigger → real listener → app; the journal holds it; export → trigger --file round-trips."""
    jpath = tmp_path / "journal.sqlite3"
    with app_in_thread() as (url, state, lt):
        with listener_in_thread(lt, url, jpath) as listen_url:
            code, _, err = invoke(
                "trigger", "call", "--to", listen_url, "--call-id", "call-rt", "--secret", "topsecret"
            )
            assert code == 0, err
        sent = [s.body for s in state.seen]
        assert len(sent) == 8
        j = Journal(jpath)
        rows = j.by_call("call-rt")
        assert [r.body for r in rows] == sent  # identical bytes journaled
        assert all(r.status == 200 for r in rows)
        assert all("topsecret" not in json.dumps(r.headers) for r in rows)
        assert rows[5].message_type == "tool-calls" and b"Sunny" in rows[5].response_body

        code, out, err = invoke("events", "--journal", str(jpath), "--call", "call-rt")
        assert code == 0, err
        assert len([line for line in out.splitlines() if " call-rt " in line]) == 8
        assert "end-of-call-report" in out
        code, out, _ = invoke("events", "--journal", str(jpath), "--json", "--limit", "3")
        lines = [json.loads(x) for x in out.splitlines()]
        assert [x["message_type"] for x in lines] == ["tool-calls", "status-update", "end-of-call-report"]
        code, out, _ = invoke("show", "last", "--journal", str(jpath))
        assert code == 0 and "end-of-call-report" in out and "customer-ended-call" in out
        assert "topsecret" not in out and "X-Vapi-Secret" in out
        code, out, _ = invoke("show", rows[5].id, "--journal", str(jpath), "--json")
        assert json.loads(out)["request"]["message"]["type"] == "tool-calls"

        fixture = tmp_path / "call.json"
        code, _, err = invoke("export", "--call", "call-rt", "-o", str(fixture), "--journal", str(jpath))
        assert code == 0 and "wrote 8 exchanges" in err
        data = json.loads(fixture.read_text())
        assert data["version"] == 1 and data["call_id"] == "call-rt" and len(data["exchanges"]) == 8
        assert "topsecret" not in fixture.read_text()

        state.seen.clear()
        code, _, err = invoke("trigger", "--file", str(fixture), "--to", url, "--secret", "topsecret")
        assert code == 0, err
        assert [s.body for s in state.seen] == sent  # byte-identical round trip
        assert all(dict(s.headers)["X-Vapi-Secret"] == "topsecret" for s in state.seen)

        one = tmp_path / "one.json"
        one.write_bytes(sent[5])
        state.seen.clear()
        code, out, _ = invoke("trigger", "--file", str(one), "--to", url)
        assert code == 0 and state.seen[0].body == sent[5] and "Sunny" in out


def test_journal_command_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"garbage" * 200)
    for args in (["events"], ["show", "last"], ["export", "--call", "x"], ["replay", "last"]):
        code, _, err = invoke(*args, "--journal", str(junk))
        assert code == 1 and "not a vapi-dev journal" in err and "Traceback" not in err
    code, _, err = invoke("events", "--journal", str(tmp_path / "none.sqlite3"))
    assert code == 1 and "no journal" in err
    Journal(tmp_path / "empty.sqlite3").close()
    code, out, _ = invoke("events", "--journal", str(tmp_path / "empty.sqlite3"))
    assert code == 0 and "no exchanges recorded yet" in out
    code, _, err = invoke("show", "last", "--journal", str(tmp_path / "empty.sqlite3"))
    assert code == 2 and "journal is empty" in err
    code, _, err = invoke("show", "ex_nope", "--journal", str(tmp_path / "empty.sqlite3"))
    assert code == 2 and "no exchange 'ex_nope'" in err
    code, _, err = invoke("export", "--call", "nope", "--journal", str(tmp_path / "empty.sqlite3"))
    assert code == 2 and "no exchanges of call" in err


@pytest.mark.parametrize("home_env", [True])
def test_vapi_dev_home_moves_the_journal(tmp_path: Path, home_env: bool) -> None:
    Journal(tmp_path / "journal.sqlite3").close()
    code, out, _ = invoke("events", env={"VAPI_DEV_HOME": str(tmp_path)})
    assert code == 0 and "no exchanges recorded yet" in out


def test_without_a_running_listener_trigger_would_say_so() -> None:
    """(Not sent: 127.0.0.1:4242 may be another program on this machine.)"""
    from vapi_dev.cli.trigger import _default_target

    url, hint, forwards_to = _default_target()
    assert url == "http://127.0.0.1:4242" and "no listener is running: start `vapi-dev listen` first" in hint
    assert forwards_to is None


async def test_trigger_finds_the_running_listener_and_says_which_of_several(cli: Any, fake_app: Any) -> None:
    import asyncio

    from tests.support.cli import run_cli
    from tests.support.net import free_port, wait_listening

    base, _ = fake_app
    first, second = free_port(), free_port()
    procs = []
    for port in (first, second):
        procs.append(cli("listen", base, "--port", str(port), "--tunnel", "none", "--json"))
        await wait_listening(port)
        await asyncio.to_thread(procs[-1].read_json_line)  # ready: its URL is written
    done = await asyncio.to_thread(run_cli, "trigger", "status-update")
    assert done.returncode == 0, done.stderr
    assert f"sending to the newest, http://127.0.0.1:{second}" in done.stderr and str(first) in done.stderr
    record = await asyncio.to_thread(procs[1].read_json_line)
    assert record["message_type"] == "status-update"
    code, _, _ = await asyncio.to_thread(procs[1].interrupt)
    assert code == 0
    done = await asyncio.to_thread(run_cli, "trigger", "status-update")  # the one left, without a note
    assert done.returncode == 0 and "listeners are running" not in done.stderr
    assert (await asyncio.to_thread(procs[0].read_json_line))["message_type"] == "status-update"
    env_url = f"http://127.0.0.1:{second}"  # stopped: VAPI_DEV_TRIGGER_URL wins over the running one
    done = await asyncio.to_thread(run_cli, "trigger", "status-update", env={"VAPI_DEV_TRIGGER_URL": env_url})
    assert done.returncode == 1 and f"127.0.0.1:{second}" in done.stderr


def test_args_as_string_sends_tool_arguments_as_a_json_string() -> None:
    with app_in_thread() as (url, state, _):
        for flag, want_type in (([], dict), (["--args-as-string"], str)):
            code, _, err = invoke("trigger", "tool-calls", "--to", url, *flag)
            assert code == 0, err
            message = json.loads(state.seen[-1].body)["message"]
            args = message["toolCallList"][0]["function"]["arguments"]
            assert isinstance(args, want_type)
            if want_type is str:
                assert isinstance(json.loads(args), dict)


async def test_trigger_through_the_listener_points_a_redirect_at_the_app(cli: Any, fake_app: Any) -> None:
    """The listener relays the app's 302: trigger's problem names the app's URL, not the listener's."""
    import asyncio

    from tests.support.cli import run_cli
    from tests.support.net import free_port, wait_listening

    base, _ = fake_app
    port = free_port()
    proc = cli("listen", base + "/redirect", "--port", str(port), "--tunnel", "none", "--json")
    await wait_listening(port)
    await asyncio.to_thread(proc.read_json_line)  # ready: its URL is written
    done = await asyncio.to_thread(run_cli, "trigger", "tool-calls", env={"COLUMNS": "200"})
    assert done.returncode == 1 and "Vapi does not follow redirects" in done.stdout, done.stdout + done.stderr
    assert f"127.0.0.1:{port}" not in done.stdout and base.split("//")[1] in done.stdout
