"""events, show, replay and export through the real CLI (#12): call-id and exchange-id prefixes, replay's exit
status, its masked credentials and its long replies, events in 80 columns, show's order and sides."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.exchanges import make_exchange
from vapi_dev.exchange import Exchange
from vapi_dev.journal.store import Journal
from vapi_dev.vapi.auth import AuthConfig, verify
from vapi_dev.vapi.contracts import check_reply

ENV = {"NO_COLOR": "1", "VAPI_DEV_SECRET": "", "VAPI_DEV_BEARER": "", "VAPI_DEV_HMAC_SECRET": ""}
CALLS = ("call-aaaa1111-one", "call-aaaa2222-two", "call-bbbb3333-three")


def journal_of(tmp_path: Path, *exchanges: Exchange) -> Path:
    path = tmp_path / "j.sqlite3"
    j = Journal(path)
    j.append(exchanges)
    j.close()
    return path


def vapi_dev(jpath: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    r = run_cli(*args, "--journal", str(jpath), env={**ENV, **(env or {})})
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout, r.stderr


def calls_journal(tmp_path: Path) -> Path:
    return journal_of(
        tmp_path,
        *(make_exchange("status-update", call_id=c, id=f"ex_abc{i}00_00000{i}") for i, c in enumerate(CALLS, 1)),
    )


def test_call_and_exchange_prefixes(tmp_path: Path) -> None:
    jpath = calls_journal(tmp_path)
    code, out, err = vapi_dev(jpath, "events", "--call", "call-bbbb", "--wide")
    assert code == 0, err
    assert CALLS[2] in out and CALLS[0] not in out and CALLS[1] not in out
    code, out, err = vapi_dev(jpath, "events", "--call", "call-aaaa")
    assert code == 2 and CALLS[0] in err and CALLS[1] in err and CALLS[2] not in err
    code, out, err = vapi_dev(jpath, "export", "--call", "call-aaaa1")
    assert code == 0, err
    assert CALLS[0] in out and CALLS[1] not in out
    assert vapi_dev(jpath, "export", "--call", "call-")[0] == 2
    code, out, err = vapi_dev(jpath, "show", "ex_abc2")
    assert code == 0, err
    assert out.startswith("ex_abc200_000002") and CALLS[1] in out
    code, _, err = vapi_dev(jpath, "show", "ex_abc")
    assert code == 2 and all(f"ex_abc{i}00_00000{i}" in err for i in (1, 2, 3))
    assert vapi_dev(jpath, "replay", "ex_abc")[0] == 2
    assert vapi_dev(jpath, "show", "ex_zzz")[0] == 2  # no such exchange


def test_ambiguous_prefix_lists_at_most_ten(tmp_path: Path) -> None:
    jpath = journal_of(tmp_path, *(make_exchange("status-update", call_id=f"call-{i:02d}") for i in range(15)))
    code, _, err = vapi_dev(jpath, "events", "--call", "call-")
    assert code == 2 and err.count("call-") == 10 + 1 and "and more" in err  # ten listed, and the prefix


def test_events_fit_in_80_columns_and_wide_shows_all(tmp_path: Path) -> None:
    long_call = "0f9c2d7e-aaaa-bbbb-cccc-1234567890ab"
    jpath = journal_of(
        tmp_path,
        make_exchange("tool-calls", {"results": [{"toolCallId": "x", "result": "Sunny " * 30}]}, call_id=long_call),
        make_exchange("transcript", call_id=long_call),
        make_exchange(None, path="/a/very/long/path/" + "x" * 80, body=b"plain"),
    )
    for env in ({}, {"COLUMNS": "80"}):
        code, out, err = vapi_dev(jpath, "events", env=env)
        assert code == 0, err
        lines = out.splitlines()
        assert len(lines) == 4 and all(len(line) <= 80 for line in lines), lines  # one row each
        assert lines[0].split() == ["id", "time", "call", "type", "status", "took", "summary"]
        assert "0f9c2d7e " in out and long_call not in out
    code, out, _ = vapi_dev(jpath, "events", "--wide")
    assert code == 0 and long_call in out and "auth" in out.splitlines()[0] and "/a/very/long/path/" in out


def test_show_puts_problems_and_the_reply_first(tmp_path: Path) -> None:
    bad = make_exchange("tool-calls", {"nope": True}, response_headers=[("X-Reply", "yes")])
    bad.problems = check_reply(bad)
    assert bad.problems
    jpath = journal_of(tmp_path, bad)
    pager = f'{sys.executable} -c \'open("{tmp_path}/paged", "w")\''
    code, out, err = vapi_dev(jpath, "show", "last", env={"PAGER": pager})
    assert code == 0, err
    problems, reply, request = out.index("problems"), out.index("X-Reply: yes"), out.index("─ request ─")
    assert problems < out.index("reply 200") < reply < request
    assert not (tmp_path / "paged").exists()  # piped: never paged
    code, out, _ = vapi_dev(jpath, "show", "last", "--reply")
    assert code == 0 and "X-Reply" in out and "request ─" not in out and "toolCallList" not in out
    code, out, _ = vapi_dev(jpath, "show", "last", "--request")
    assert code == 0 and "X-Reply" not in out and "toolCallList" in out
    assert vapi_dev(jpath, "show", "last", "--request", "--reply")[0] == 2


def recorded_tool_call(tmp_path: Path, url: str, *, secret: str | None = "abc", body: bytes | None = None) -> Path:
    headers = [("Content-Type", "application/json")] + ([("X-Vapi-Secret", secret)] if secret else [])
    ex = make_exchange("tool-calls", {"results": []}, headers=headers, forward_url=url)
    if body is not None:
        ex = make_exchange(None, body=body, headers=headers, forward_url=url, path="/echo")
    j = Journal(tmp_path / "j.sqlite3")
    j.append([ex], secrets=[secret] if secret else [])
    j.close()
    return tmp_path / "j.sqlite3"


async def test_replay_refuses_a_masked_credential_it_was_not_given(
    fake_app: tuple[str, AppState], tmp_path: Path
) -> None:
    base, state = fake_app
    jpath = recorded_tool_call(tmp_path, base + "/tool")
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last")
    assert code == 1 and "--secret" in err and "x-vapi-secret" in err.lower() and not state.seen
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last", "--secret", "abc")
    assert code == 0, err
    assert "masked: signed again with --secret" in out and "reply contract: ok" in out and "abc" not in out
    (tmp_path / "plain").mkdir()
    jpath2 = recorded_tool_call(tmp_path / "plain", base + "/tool", secret=None)
    code, out, err = await asyncio.to_thread(vapi_dev, jpath2, "replay", "last")
    assert code == 0, err
    assert "masked" not in out  # nothing masked, nothing to sign


async def test_replay_exits_1_when_the_new_reply_fails(fake_app: tuple[str, AppState], tmp_path: Path) -> None:
    base, _ = fake_app
    jpath = recorded_tool_call(tmp_path, base + "/echo", secret=None)  # echo: not a tool reply
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last")
    assert code == 1 and "problems" in out and "reply contract" in err
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last", "--to", base + "/redirect")
    assert code == 1 and "not 2xx" in err, (out, err)


async def test_replay_prints_40_lines_of_a_long_reply_unless_verbose(
    fake_app: tuple[str, AppState], tmp_path: Path
) -> None:
    base, state = fake_app
    body = json.dumps({f"key{i}": i for i in range(100)}).encode()
    jpath = recorded_tool_call(tmp_path, base + "/echo", secret="abc", body=body)
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last", "--secret", "abc")
    assert code == 0, err
    diff = out[out.index("reply body diff") :].splitlines()[1:]
    assert len(diff) == 41 and "more lines (-v shows them all)" in diff[-1]
    code, out, err = await asyncio.to_thread(vapi_dev, jpath, "replay", "last", "--secret", "abc", "-v")
    assert code == 0 and '"key99": 99' in out and "more lines" not in out
    sent = state.seen[-1]
    result = verify(AuthConfig(secret="abc"), method="POST", url=base, headers=sent["headers"], body=sent["body"])
    assert result is not None and result.ok


def test_show_pages_a_long_exchange_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty
    import subprocess

    from tests.support.cli import ROOT

    jpath = journal_of(tmp_path, make_exchange(None, body=json.dumps({f"k{i}": i for i in range(200)}).encode()))
    paged = tmp_path / "paged"
    pager = f'{sys.executable} -c \'import sys; open("{paged}", "w").write(sys.stdin.read())\''
    leader, follower = pty.openpty()
    env = {**os.environ, **ENV, "PAGER": pager, "COLUMNS": "80", "LINES": "30"}
    try:
        cmd = [sys.executable, "-m", "vapi_dev", "show", "last", "--journal", str(jpath)]
        proc = subprocess.run(
            cmd, stdin=follower, stdout=follower, stderr=subprocess.PIPE, env=env, cwd=ROOT, timeout=30
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert proc.returncode == 0, proc.stderr
    assert '"k199": 199' in paged.read_text()
