"""The cloudflared watchdog: a tunnel that dies or stops being ready is replaced by a new quick tunnel (a new
URL), reported through the listener; bounded retries; no process left, also when stopped mid-restart."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.support.http_client import post
from tests.support.net import wait_until
from tests.support.ngrok import alive, pids, wait_gone
from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.tunnels import TunnelConfig, self_check
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel

Heard = list[TunnelChanged | Notice]


def watched(
    path: str, made: list[CloudflaredTunnel], *, timeout: float = 10.0, **kw: float
) -> tuple[CloudflaredTunnel, Heard]:
    cfg = TunnelConfig(provider="cloudflared", cloudflared_path=path, startup_timeout=timeout)
    tunnel = CloudflaredTunnel(cfg, health_interval=0.2, restart_backoff=0.05, **kw)  # type: ignore[arg-type]
    heard: Heard = []
    tunnel.set_listener(heard.append)
    made.append(tunnel)
    return tunnel, heard


def changes(heard: Heard) -> list[TunnelChanged]:
    return [e for e in heard if isinstance(e, TunnelChanged)]


async def all_gone(pidfile: Path) -> None:
    for pid in pids(pidfile):
        assert await wait_gone(pid), f"cloudflared {pid} outlived the tunnel"


async def test_a_dead_cloudflared_is_replaced_by_a_new_quick_tunnel(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_DIE_AFTER_REQUESTS", "2")  # the self-check, then one request
    tunnel, heard = watched(path, made)
    info = await tunnel.start(receiver)
    assert info is not None
    ok, detail = await self_check(info.public_url)
    assert ok, detail
    assert (await post(info.public_url + "/one", b"1")).status == 200
    await wait_until(lambda: len(changes(heard)) >= 2, timeout=20)
    lost, restored = changes(heard)[:2]
    assert not lost.up and lost.public_url == info.public_url and "exited (exit code 1)" in lost.reason
    assert restored.up and restored.public_url and restored.public_url != info.public_url
    assert "new public URL" in restored.reason and "self-check ok" in restored.reason
    r = await post(restored.public_url + "/two", b"after")
    assert r.status == 200 and b'"got": "after"' in r.body
    first, second = pids(pidfile)
    assert not alive(first) and alive(second) and tunnel.pid == second
    await tunnel.stop()
    await all_gone(pidfile)


async def test_a_cloudflared_that_stops_being_ready_is_restarted(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_UNREADY_AFTER", "0.5")
    tunnel, heard = watched(path, made)
    info = await tunnel.start(receiver)
    assert info is not None
    await wait_until(lambda: len(changes(heard)) >= 2, timeout=20)
    lost, restored = changes(heard)[:2]
    assert not lost.up and "stopped being ready" in lost.reason
    assert restored.up and restored.public_url != info.public_url
    first, _second = pids(pidfile)
    assert await wait_gone(first)  # the unready one (still alive on its own) was stopped
    await tunnel.stop()
    await all_gone(pidfile)


async def test_gives_up_once_after_bounded_tries_and_leaves_nothing_running(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_DIE_AFTER", "0.3")
    monkeypatch.setenv("FAKE_CLOUDFLARED_RESTART_MODE", "fail_start")
    tunnel, heard = watched(path, made, max_restarts=2)
    assert await tunnel.start(receiver) is not None
    await wait_until(lambda: any(isinstance(e, Notice) for e in heard), timeout=20)
    [lost] = changes(heard)
    assert not lost.up
    [gave_up] = [e for e in heard if isinstance(e, Notice)]
    assert gave_up.level == "error" and "Gave up restarting cloudflared after 2 tries" in gave_up.text
    assert "fake failure: no route to the edge" in gave_up.text and receiver in gave_up.text
    assert len(pids(pidfile)) == 3  # the first run and two tries, no more
    await all_gone(pidfile)
    await tunnel.stop()


async def test_stop_during_a_restart_leaves_no_process(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_DIE_AFTER", "0.3")
    monkeypatch.setenv("FAKE_CLOUDFLARED_RESTART_MODE", "never_ready")  # the restart hangs waiting for /ready
    tunnel, heard = watched(path, made, timeout=60)
    assert await tunnel.start(receiver) is not None
    await wait_until(lambda: len(pids(pidfile)) >= 2 and alive(pids(pidfile)[1]), timeout=20)
    assert [c.up for c in changes(heard)] == [False]
    await tunnel.stop()
    await all_gone(pidfile)
    assert [c.up for c in changes(heard)] == [False]


async def test_a_tunnel_that_keeps_dying_is_given_up_after_the_same_bound(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_DIE_AFTER", "0.3")
    monkeypatch.setenv("FAKE_CLOUDFLARED_RESTART_MODE", "same")  # every new tunnel dies soon too
    tunnel, heard = watched(path, made, max_restarts=2)
    assert await tunnel.start(receiver) is not None
    await wait_until(lambda: any(isinstance(e, Notice) for e in heard), timeout=30)
    assert [c.up for c in changes(heard)] == [False, True, False, True, False]
    [gave_up] = [e for e in heard if isinstance(e, Notice)]
    assert "Gave up restarting cloudflared" in gave_up.text and "lost again within 60 s, 3 times" in gave_up.text
    assert len(pids(pidfile)) == 3
    await all_gone(pidfile)
    await tunnel.stop()


async def test_a_ctrl_c_that_reaches_cloudflared_too_is_not_a_lost_tunnel(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel]
) -> None:
    """A terminal's Ctrl-C signals cloudflared as well as vapi-dev: vapi-dev's own stop comes within the
    grace, so no new quick tunnel is made and nothing is announced."""
    path, pidfile = fake
    tunnel, heard = watched(path, made, outside_grace=60)
    assert await tunnel.start(receiver) is not None
    [pid] = pids(pidfile)
    os.kill(pid, signal.SIGINT)
    assert await wait_gone(pid)
    await asyncio.sleep(1.0)  # five health checks' worth: a watchdog that reacted would have started one
    assert heard == [] and pids(pidfile) == [pid]
    await tunnel.stop()
    assert heard == [] and pids(pidfile) == [pid]


async def test_a_cloudflared_stopped_by_someone_else_is_restarted_after_the_grace(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel]
) -> None:
    path, pidfile = fake
    tunnel, heard = watched(path, made, outside_grace=0.2)
    info = await tunnel.start(receiver)
    assert info is not None
    [pid] = pids(pidfile)
    os.kill(pid, signal.SIGTERM)
    await wait_until(lambda: len(changes(heard)) >= 2, timeout=20)
    lost, restored = changes(heard)[:2]
    assert not lost.up and "stopped from outside vapi-dev" in lost.reason
    assert restored.up and restored.public_url != info.public_url
    await tunnel.stop()
    await all_gone(pidfile)
