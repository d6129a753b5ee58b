"""`vapi-dev listen --tunnel cloudflared` when the quick tunnel is lost mid-run, as a user runs it: the real
CLI drives the fake cloudflared, which dies after a request; the watchdog starts a new quick tunnel (a new
URL), the NDJSON stream says so, the local Vapi API stand-in gets the PATCH with the new URL for
--assistant, requests through the new edge reach the app, and SIGINT leaves no process and restores Vapi."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cloudflared_listen import BODY, assert_all_gone
from tests.cli.test_cloudflared_listen import fake as fake  # the fixture
from tests.cli.test_stream_width import SCRIPT, Pty
from tests.fakes.fake_vapi_api import FakeVapiApi
from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.http_client import post
from tests.support.net import wait_until
from tests.support.ngrok import alive, pids


@pytest.fixture
async def vapi_api() -> AsyncIterator[FakeVapiApi]:
    api = FakeVapiApi(key="k-test")
    await api.start()
    api.add("assistant", {"id": "asst_cf", "name": "Quick", "server": {"url": "https://prod.example/vapi"}})
    yield api
    await api.stop()


def events_until(proc: Any, wanted: str, up: bool, limit: int = 30) -> list[dict[str, Any]]:
    """NDJSON records up to and including the first ``tunnel`` event with ``up`` (bounded)."""
    seen: list[dict[str, Any]] = []
    for _ in range(limit):
        record = proc.read_json_line(timeout=30)
        seen.append(record)
        if record["event"] == wanted and record.get("up") is up:
            return seen
    raise AssertionError(f"no {wanted} up={up} record in {seen}")


async def test_lost_tunnel_comes_back_with_a_new_url_and_the_assistant_follows(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str], vapi_api: FakeVapiApi
) -> None:
    base, state = fake_app
    before = vapi_api.get("assistant", "asst_cf")["server"]
    proc = cli(
        "listen",
        base,
        "--port",
        "0",
        "--json",
        "--tunnel",
        "cloudflared",
        "--cloudflared-path",
        fake["exe"],
        "--assistant",
        "asst_cf",
        "--vapi-api-url",
        vapi_api.url,
        # the self-check and one request, then the fake cloudflared exits
        env={"VAPI_API_KEY": "k-test", "FAKE_CLOUDFLARED_DIE_AFTER_REQUESTS": "2"},
    )
    ready = await asyncio.to_thread(proc.read_json_line)
    first = ready["public_url"]
    assert ready["tunnel"] == "cloudflared" and first.startswith("http://127.0.0.1:")

    def assistant_url() -> str:
        return str(vapi_api.get("assistant", "asst_cf")["server"]["url"])

    await wait_until(lambda: assistant_url().startswith(first), timeout=15)
    assert (await post(first + "/hook", BODY)).status == 200  # the fake dies after this one

    lost = (await asyncio.to_thread(events_until, proc, "tunnel", False))[-1]
    assert lost["public_url"] == first and "cloudflared exited" in lost["reason"]
    back = (await asyncio.to_thread(events_until, proc, "tunnel", True))[-1]
    new = back["public_url"]
    assert new and new != first and new.startswith("http://127.0.0.1:")
    assert "new public URL" in back["reason"] and "self-check ok" in back["reason"]

    await wait_until(lambda: assistant_url().startswith(new), timeout=15)
    assert vapi_api.patches()[-1][1]["server"]["url"].startswith(new)
    r = await post(new + "/after", BODY)  # through the new edge to the app
    assert r.status == 200 and state.seen[-1]["path_qs"] == "/after"

    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    await assert_all_gone(fake["pidfile"])
    assert vapi_api.get("assistant", "asst_cf")["server"] == before
    assert "k-test" not in out + err


async def test_sigint_mid_restart_leaves_no_process(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    base, _ = fake_app
    pidfile = Path(fake["pidfile"])
    proc = cli(
        "listen",
        base,
        "--port",
        "0",
        "--json",
        "--tunnel",
        "cloudflared",
        "--cloudflared-path",
        fake["exe"],
        "--tunnel-timeout",
        "60",
        # the first cloudflared dies; the one started in its place never becomes ready
        env={"FAKE_CLOUDFLARED_DIE_AFTER": "0.5", "FAKE_CLOUDFLARED_RESTART_MODE": "never_ready"},
    )
    await asyncio.to_thread(proc.read_json_line)
    await asyncio.to_thread(events_until, proc, "tunnel", False)
    await wait_until(lambda: len(pids(pidfile)) >= 2 and alive(pids(pidfile)[1]), timeout=15)
    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert '"up": true' not in out and "Traceback" not in err
    await assert_all_gone(fake["pidfile"])
    assert len(pids(pidfile)) == 2


async def test_auto_does_not_fall_back_when_an_assistant_waits_for_the_url(
    fake: dict[str, str], vapi_api: FakeVapiApi
) -> None:
    Path(fake["bin"]).mkdir(exist_ok=True)
    (Path(fake["bin"]) / "cloudflared").symlink_to(fake["exe"])  # installed: auto picks it
    before = vapi_api.get("assistant", "asst_cf")
    r = await asyncio.to_thread(
        run_cli,
        "listen",
        "--port",
        "0",
        "--assistant",
        "asst_cf",
        "--vapi-api-url",
        vapi_api.url,
        env={"VAPI_API_KEY": "k-test", "FAKE_CLOUDFLARED_MODE": "fail_start"},
    )
    assert r.returncode == 1 and "error: cloudflared exited before the tunnel was up" in r.stderr
    assert "local only" not in r.stderr and "Traceback" not in r.stderr
    assert vapi_api.get("assistant", "asst_cf") == before and vapi_api.patches() == []
    await assert_all_gone(fake["pidfile"])


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs POSIX pseudo-terminals")
async def test_ctrl_c_in_a_terminal_stops_both_without_a_restart(
    fake_app: tuple[str, AppState], fake: dict[str, str]
) -> None:
    """A terminal's Ctrl-C goes to the whole foreground process group, vapi-dev and cloudflared alike; while
    vapi-dev lets an in-flight request finish, its watchdog must not take cloudflared's exit for a loss."""
    if not SCRIPT.exists():
        pytest.skip("the vapi-dev console script is not installed in this environment")
    base, state = fake_app
    term = Pty(["listen", base, "--port", "0", "--tunnel", "cloudflared", "--cloudflared-path", fake["exe"]], 100)
    try:
        text = await asyncio.to_thread(term.read_until, lambda t: "Waiting for events" in t, 30.0)
        local = re.search(r"Local\s+(http://127\.0\.0\.1:\d+)", text)
        assert local, text
        held = asyncio.ensure_future(post(local.group(1) + "/stall", BODY))  # the app holds it
        await wait_until(lambda: any(seen["path_qs"].startswith("/stall") for seen in state.seen), timeout=10)
        os.killpg(term.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        await wait_until(lambda: not alive(pids(Path(fake["pidfile"]))[0]), timeout=10)
        await asyncio.sleep(2.5)  # two health checks while vapi-dev drains: a watchdog reacting would restart
        state.release.set()
        await held
        assert await asyncio.to_thread(term.proc.wait, 30) == 0
        await asyncio.to_thread(term.stop)  # the rest of the output
        assert "tunnel lost" not in term.text() and "restoring" not in term.text()
    finally:
        term.kill()
    await assert_all_gone(fake["pidfile"])
    assert len(pids(Path(fake["pidfile"]))) == 1  # no new quick tunnel was made on the way out
