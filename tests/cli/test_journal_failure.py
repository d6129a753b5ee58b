"""A journal that cannot be written (a full disk) is one notice in the stream and in NDJSON, and forwarding
goes on. The full disk is the kernel's file-size limit (RLIMIT_FSIZE) on the listener: its journal's writes
past 256 kB fail as on a full filesystem (Python ignores SIGXFSZ, so write() returns EFBIG)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from tests.support.apps import AppState
from tests.support.cli import ROOT, CliProcess
from tests.support.http_client import post
from tests.support.net import free_port, wait_listening
from vapi_dev.exchange import Event, Finished, Notice
from vapi_dev.session import Bus

FILE_LIMIT = 256 * 1024
NOTICE = "journal: cannot write to the journal"


class FileLimitedCli(CliProcess):
    """The real CLI (as CliProcess runs it) with every file it writes limited to ``limit`` bytes."""

    def __init__(self, args: list[str], limit: int) -> None:
        def restrict() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vapi_dev", *args],
            bufsize=0,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "400"},
            cwd=ROOT,
            preexec_fn=restrict,
        )


async def _send(url: str, n: int, state: AppState) -> None:
    """``n`` requests of 40 kB (echoed: ~80 kB a journal row), each forwarded and answered."""
    for i in range(n):
        body = json.dumps({"n": i, "pad": "q" * 40_000}).encode()
        before = len(state.seen)
        reply = await post(url, body)
        assert reply.status == 200 and reply.body == body
        assert len(state.seen) == before + 1 and state.seen[-1]["body"] == body


async def test_a_full_disk_is_one_notice_in_the_stream_and_forwarding_goes_on(
    fake_app: tuple[str, AppState], tmp_path: Path
) -> None:
    base, state = fake_app
    port = free_port()
    jpath = tmp_path / "journal.sqlite3"
    args = ["listen", base, "--port", str(port), "--tunnel", "none", "--journal", str(jpath)]
    proc = FileLimitedCli(args, FILE_LIMIT)
    try:
        await wait_listening(port)
        url = f"http://127.0.0.1:{port}/"
        await _send(url, 10, state)  # ~800 kB for a journal that can grow to 256 kB
        printed = await asyncio.to_thread(proc.read_stdout_until, NOTICE, 30.0)
        await _send(url, 10, state)  # forwarding goes on after the notice
        code, rest, err = await asyncio.to_thread(proc.interrupt)
    finally:
        proc.kill()
    out = printed + rest
    assert code == 0 and "Traceback" not in out + err, err
    assert out.count(NOTICE) == 1, out
    (line,) = [ln for ln in out.splitlines() if NOTICE in ln]
    assert "free disk space" in line and "--journal" in line and "--no-journal" in line
    assert out.count(" POST /") == 20  # every exchange still has its line, before and after the notice


async def test_a_full_disk_is_one_notice_in_ndjson_too(fake_app: tuple[str, AppState], tmp_path: Path) -> None:
    base, state = fake_app
    jpath = tmp_path / "journal.sqlite3"
    args = ["listen", base, "--port", "0", "--tunnel", "none", "--json", "--journal", str(jpath)]
    proc = FileLimitedCli(args, FILE_LIMIT)
    try:
        ready = await asyncio.to_thread(proc.read_json_line)
        await _send(ready["local_url"], 10, state)
        records = []
        while not any(r["event"] == "notice" for r in records):  # bounded: each read waits 15 s at most
            records.append(await asyncio.to_thread(proc.read_json_line))
        await _send(ready["local_url"], 10, state)
        code, rest, err = await asyncio.to_thread(proc.interrupt)
    finally:
        proc.kill()
    assert code == 0 and "Traceback" not in err, err
    records += [json.loads(line) for line in rest.splitlines() if line.strip()]
    notices = [r for r in records if r["event"] == "notice" and "journal" in r["text"]]
    assert len(notices) == 1 and notices[0]["level"] == "error" and notices[0]["text"].startswith(NOTICE)
    assert sum(r["event"] == "exchange" for r in records) == 20
    assert err.count(NOTICE) == 1  # the human stream (stderr under --json) has it once as well


class _Broken:
    def emit(self, event: Event) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    async def aclose(self) -> None:
        pass


class _Keeps:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)

    async def aclose(self) -> None:
        pass


def test_a_sink_that_raises_costs_the_others_nothing() -> None:
    from tests.support.exchanges import make_exchange

    keeps = _Keeps()
    bus = Bus([_Broken(), keeps])
    first, second = Finished(make_exchange()), Finished(make_exchange())
    bus.emit(first)
    bus.emit(second)
    notices = [e for e in keeps.events if isinstance(e, Notice)]
    assert [e for e in keeps.events if isinstance(e, Finished)] == [first, second]
    assert len(notices) == 1 and "_Broken failed" in notices[0].text and "RecursionError" in notices[0].text
