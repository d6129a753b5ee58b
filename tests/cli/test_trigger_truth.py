"""`trigger` tells the truth (#12): reply-contract problems, exit codes, long replies, masked fixtures, --list."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

from tests.support.apps import AppState
from tests.support.cli import run_cli
from vapi_dev.redact import MASK
from vapi_dev.vapi.samples import SAMPLE_TYPES


async def _trigger(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, "trigger", *args, env={"COLUMNS": str(columns)})


async def test_a_valid_reply_passes(fake_app: tuple[str, AppState]) -> None:
    url, _ = fake_app
    r = await _trigger("tool-calls", "--to", url + "/tool")
    assert r.returncode == 0, r.stderr
    assert "200" in r.stdout and "✗" not in r.stdout


async def test_a_reply_breaking_its_contract_is_shown_and_exits_1(fake_app: tuple[str, AppState]) -> None:
    url, state = fake_app
    r = await _trigger("tool-calls", "--to", url + "/")  # the echo app: the request itself is no tool reply
    assert r.returncode == 1
    assert "✗" in r.stdout and "results" in r.stdout  # the problem, as the stream words it
    assert "failed the checks" in r.stderr
    assert len(state.seen) == 1


async def test_a_non_2xx_reply_exits_1_and_no_check_only_sends(fake_app: tuple[str, AppState]) -> None:
    url, _ = fake_app
    r = await _trigger("status-update", "--to", url + "/redirect")
    assert r.returncode == 1 and "302" in r.stdout
    r = await _trigger("tool-calls", "--to", url + "/", "--no-check")
    assert r.returncode == 0, r.stderr
    assert "✗" not in r.stdout


async def test_a_long_reply_is_cut_at_40_lines_unless_verbose(fake_app: tuple[str, AppState]) -> None:
    url, _ = fake_app
    r = await _trigger("end-of-call-report", "--to", url + "/", "--no-check")  # echoed: a long JSON body
    body = r.stdout.splitlines()[1:]
    assert "more lines (-v shows the whole reply)" in body[-1]
    assert len(body) == 41
    r = await _trigger("end-of-call-report", "--to", url + "/", "--no-check", "-v")
    assert "more lines" not in r.stdout and len(r.stdout.splitlines()) > 42


def _masked_fixture(tmp_path: Path, path: str) -> Path:
    body = {"message": {"type": "tool-calls", "toolCallList": [{"id": "tc-1", "function": {"name": "w"}}]}}
    exchange = {
        "method": "POST",
        "path": path,
        "query": "",
        "message_type": "tool-calls",
        "headers": [["Content-Type", "application/json"], ["X-Vapi-Secret", MASK]],
        "body_json": body,
        "reply": {"status": 200},
    }
    f = tmp_path / "call.json"
    f.write_text(json.dumps({"version": 1, "call_id": "c-1", "masked": True, "exchanges": [exchange]}))
    return f


async def test_a_masked_fixture_is_never_sent_unsigned(fake_app: tuple[str, AppState], tmp_path: Path) -> None:
    url, state = fake_app
    f = _masked_fixture(tmp_path, "/")
    r = await _trigger("--file", str(f), "--to", url)
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and "X-Vapi-Secret" in err[0] and "--secret" in err[0]
    assert state.seen == []


async def test_a_masked_fixture_is_signed_again_with_the_credential(
    fake_app: tuple[str, AppState], tmp_path: Path
) -> None:
    url, state = fake_app
    f = _masked_fixture(tmp_path, "/")
    r = await _trigger("--file", str(f), "--to", url, "--secret", "s3cr3t", "--no-check")
    assert r.returncode == 0, r.stderr
    assert "masked on export; signing again with --secret" in r.stderr
    headers = dict(state.seen[0]["headers"])
    assert headers["X-Vapi-Secret"] == "s3cr3t"
    assert "s3cr3t" not in r.stdout + r.stderr


async def test_list_never_cuts_a_type_name() -> None:
    for columns in (80, 60):
        r = await _trigger("--list", columns=columns)
        assert r.returncode == 0, r.stderr
        firsts = {line.split(" ", 1)[0] for line in r.stdout.splitlines()}
        for t in [*SAMPLE_TYPES, "call"]:
            assert t in firsts, (columns, t)
        assert all(len(line.rstrip()) <= columns for line in r.stdout.splitlines())
