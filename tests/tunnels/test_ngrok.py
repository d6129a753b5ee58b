"""The ngrok provider driven through the real pyngrok against the fake agent (tests/fakes/fake_ngrok.py)."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.http_client import post
from tests.support.ngrok import TOKEN, alive, kill_leftovers, pids, wait_gone, write_fake_agent
from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.tunnels import TunnelConfig, TunnelError, choose, errors, self_check
from vapi_dev.tunnels.ngrok import NgrokTunnel

LIVE_TOKEN = os.environ.get("NGROK_AUTHTOKEN")  # read at import: the autouse fixture clears it per test


@dataclass
class Agent:
    exe: Path
    pidfile: Path
    config: Path


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    for var in ("NGROK_AUTHTOKEN", "VAPI_DEV_NGROK_PATH", "PYNGROK_NGROK_PATH", "FAKE_NGROK_SCENARIO"):
        monkeypatch.delenv(var, raising=False)
    pidfile = tmp_path / "agent.pids"
    monkeypatch.setenv("FAKE_NGROK_PIDFILE", str(pidfile))
    monkeypatch.setenv("FAKE_NGROK_INTERVAL", "0.2")
    yield Agent(write_fake_agent(tmp_path / "bin" / "ngrok"), pidfile, tmp_path / "ngrok.yml")
    kill_leftovers(pidfile)


@pytest.fixture
async def tunnels() -> AsyncIterator[list[NgrokTunnel]]:
    made: list[NgrokTunnel] = []
    yield made
    for tunnel in made:
        await tunnel.stop()


def cfg_for(agent: Agent, **overrides: Any) -> TunnelConfig:
    values: dict[str, Any] = {
        "provider": "ngrok",
        "ngrok_authtoken": TOKEN,
        "ngrok_path": str(agent.exe),
        "ngrok_config_path": str(agent.config),
        "startup_timeout": 2,
    }
    values.update(overrides)
    return TunnelConfig(**values)


async def post_through(public_url: str, body: bytes) -> dict[str, Any]:
    reply = await post(public_url + "/tools", body)
    assert reply.status == 200
    data: dict[str, Any] = reply.json()
    return data


async def test_public_url_reaches_receiver_and_stop_leaves_no_agent(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel]
) -> None:
    tunnel = NgrokTunnel(cfg_for(agent))
    tunnels.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None and info.provider == "ngrok"
    assert info.public_url.startswith("http://127.0.0.1:")
    assert info.inspect_url is not None and info.inspect_url.startswith("http://127.0.0.1:")

    assert await post_through(info.public_url, b'{"message":{"type":"tool-calls"}}') == {
        "path": "/tools",
        "got": '{"message":{"type":"tool-calls"}}',
    }
    ok, detail = await self_check(info.public_url)
    assert ok, detail

    pid = tunnel.agent_pid
    assert pid is not None and pids(agent.pidfile) == [pid]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert TOKEN.encode() not in b" ".join(argv) and b"--authtoken" not in argv  # not visible in `ps`
    await tunnel.stop()
    assert await wait_gone(pid)
    assert tunnel.agent_pid is None
    await tunnel.stop()  # idempotent


async def test_domain_is_requested_as_url(agent: Agent, receiver: str, tunnels: list[NgrokTunnel]) -> None:
    tunnel = NgrokTunnel(cfg_for(agent, domain="https://quiet-otter.ngrok-free.dev/"))
    tunnels.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None and info.public_url == "https://quiet-otter.ngrok-free.dev"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("no_token", errors.NO_TOKEN),
        ("invalid_token", errors.INVALID_TOKEN),
        ("malformed_token", errors.INVALID_TOKEN),
        ("session_limit", errors.SESSION_LIMIT),
        ("endpoint_limit", errors.ENDPOINT_LIMIT),
        ("already_online", errors.already_online("quiet-otter.ngrok-free.dev")),
        ("offline", errors.OFFLINE),
        ("web_busy", errors.WEB_BUSY),
    ],
)
async def test_agent_errors_become_one_clear_sentence_without_the_token(
    agent: Agent,
    receiver: str,
    tunnels: list[NgrokTunnel],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    scenario: str,
    expected: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("FAKE_NGROK_SCENARIO", scenario)
    tunnel = NgrokTunnel(cfg_for(agent, startup_timeout=1, domain="quiet-otter.ngrok-free.dev"))
    tunnels.append(tunnel)
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == expected
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    out, err = capfd.readouterr()
    for text in (str(caught.value), caplog.text, out, err):
        assert TOKEN not in text
    started = pids(agent.pidfile)
    assert started, "the fake agent should have been launched"
    for pid in started:
        assert await wait_gone(pid)


async def test_missing_token_fails_before_starting_anything(agent: Agent, receiver: str) -> None:
    tunnel = choose(cfg_for(agent, ngrok_authtoken=None))
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == errors.NO_TOKEN
    assert pids(agent.pidfile) == []


@pytest.mark.parametrize("layout", ["v3", "v2", "env"])
async def test_token_from_config_file_or_env_reaches_the_agent(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], monkeypatch: pytest.MonkeyPatch, layout: str
) -> None:
    if layout == "env":
        monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    else:
        text = f'version: "3"\nagent:\n  authtoken: {TOKEN}\n' if layout == "v3" else f"authtoken: {TOKEN}\n"
        agent.config.write_text(text)
    tunnel = choose(cfg_for(agent, provider="auto", ngrok_authtoken=None))
    assert isinstance(tunnel, NgrokTunnel)
    tunnels.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None
    assert (await post_through(info.public_url, b"hi"))["got"] == "hi"


async def test_old_agent_falls_back_to_the_v2_api(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_SCENARIO", "old_agent")
    tunnel = NgrokTunnel(cfg_for(agent, startup_timeout=1))
    tunnels.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None
    assert (await post_through(info.public_url, b"v2")) == {"path": "/tools", "got": "v2"}


async def test_agent_without_either_api_is_too_old(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_SCENARIO", "ancient_agent")
    tunnel = NgrokTunnel(cfg_for(agent, startup_timeout=1))
    tunnels.append(tunnel)
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == errors.too_old(str(agent.exe))
    for pid in pids(agent.pidfile):
        assert await wait_gone(pid)


async def test_watchdog_kills_a_silent_agent(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_NGROK_SCENARIO", "silent")
    tunnel = NgrokTunnel(cfg_for(agent, startup_timeout=1))
    tunnels.append(tunnel)
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message.startswith("ngrok did not start within 1 s:")
    [pid] = pids(agent.pidfile)
    assert await wait_gone(pid)
    assert tunnel.agent_pid is None


async def test_explicit_path_that_does_not_exist(agent: Agent, receiver: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ngrok"
    tunnel = NgrokTunnel(cfg_for(agent, ngrok_path=str(missing)))
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == errors.missing_binary(str(missing))
    assert not missing.exists()


async def test_program_that_is_not_an_agent(agent: Agent, receiver: str, tmp_path: Path) -> None:
    impostor = tmp_path / "impostor"
    impostor.write_text("#!/bin/sh\nexit 0\n")
    impostor.chmod(0o755)
    tunnel = NgrokTunnel(cfg_for(agent, ngrok_path=str(impostor)))
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == errors.not_an_agent(str(impostor))


async def next_change(events: asyncio.Queue[TunnelChanged | Notice]) -> TunnelChanged:
    for _ in range(20):  # skip notices (failed restart attempts), bounded
        event = await asyncio.wait_for(events.get(), timeout=15)
        if isinstance(event, TunnelChanged):
            return event
    raise AssertionError("no TunnelChanged event")


@pytest.mark.parametrize("loss", ["agent killed", "endpoint closed"])
async def test_lost_tunnel_is_restored_and_announced(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], loss: str
) -> None:
    events: asyncio.Queue[TunnelChanged | Notice] = asyncio.Queue()
    tunnel = NgrokTunnel(cfg_for(agent), health_interval=0.1, restart_backoff=0.05)
    tunnel.set_listener(events.put_nowait)
    tunnels.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None and info.inspect_url is not None
    first_pid = tunnel.agent_pid
    assert first_pid is not None

    if loss == "agent killed":
        os.kill(first_pid, signal.SIGKILL)
    else:
        async with aiohttp.ClientSession() as session:
            async with session.get(info.inspect_url + "/api/endpoints") as resp:
                [endpoint] = (await resp.json())["endpoints"]
            async with session.delete(info.inspect_url + endpoint["uri"]) as resp:
                assert resp.status == 204

    down = await next_change(events)
    assert not down.up and down.public_url == info.public_url
    assert down.reason in ("the ngrok agent exited", "the ngrok endpoint was closed")
    up = await next_change(events)
    assert up.up and up.public_url is not None
    assert up.reason == ("new public URL" if up.public_url != info.public_url else "same public URL")
    assert (await post_through(up.public_url, b"again"))["got"] == "again"

    assert await wait_gone(first_pid)
    second_pid = tunnel.agent_pid
    assert second_pid is not None and second_pid != first_pid
    await tunnel.stop()
    assert await wait_gone(second_pid)
    assert all(not alive(pid) for pid in pids(agent.pidfile))


def agent_archive(agent: Agent) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(agent.exe, arcname="ngrok")
    return buffer.getvalue()


@pytest.fixture
def managed_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home with no ngrok anywhere: the agent would be installed under $XDG_CONFIG_HOME/ngrok."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "emptybin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "emptybin"))
    return tmp_path / "xdg" / "ngrok" / "ngrok"


async def test_missing_agent_is_downloaded_with_progress(
    agent: Agent, receiver: str, tunnels: list[NgrokTunnel], managed_home: Path, aiohttp_server: Any
) -> None:
    archive = agent_archive(agent)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=archive, content_type="application/gzip")

    app = web.Application()
    app.router.add_get("/ngrok-v3-stable-linux-amd64.tgz", serve)
    cdn = await aiohttp_server(app)
    progress: list[str] = []
    tunnel = NgrokTunnel(
        cfg_for(agent, ngrok_path=None),
        progress=progress.append,
        download_url=f"http://127.0.0.1:{cdn.port}/ngrok-v3-stable-linux-amd64.tgz",
    )
    tunnels.append(tunnel)
    assert tunnel.ngrok_path == str(managed_home)
    info = await tunnel.start(receiver)
    assert info is not None and managed_home.exists()
    assert any(p.startswith("Downloading ngrok agent… ") and p.endswith("%") for p in progress), progress
    assert progress[-1] == "ngrok agent installed."
    assert (await post_through(info.public_url, b"fresh"))["got"] == "fresh"


async def test_failed_download_says_what_to_do(
    agent: Agent, receiver: str, managed_home: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connection refused at once
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    tunnel = NgrokTunnel(cfg_for(agent, ngrok_path=None), download_url=f"http://127.0.0.1:{closed}/x.tgz")
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    assert caught.value.message == errors.DOWNLOAD_FAILED
    assert not managed_home.exists()
    assert capfd.readouterr().out == ""  # pyngrok's own progress printing stays off


@pytest.mark.live
@pytest.mark.skipif(not LIVE_TOKEN, reason="needs NGROK_AUTHTOKEN and internet")
async def test_live_ngrok_round_trip(receiver: str) -> None:
    tunnel = choose(TunnelConfig(provider="ngrok", ngrok_authtoken=LIVE_TOKEN, startup_timeout=30))
    assert isinstance(tunnel, NgrokTunnel)
    try:
        info = await tunnel.start(receiver)
        assert info is not None and info.public_url.startswith("https://")
        ok, detail = await self_check(info.public_url, timeout=15)
        assert ok, detail
        pid = tunnel.agent_pid
    finally:
        await tunnel.stop()
    assert pid is not None and await wait_gone(pid)
