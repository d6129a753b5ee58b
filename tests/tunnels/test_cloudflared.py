"""The cloudflared provider against the fake cloudflared (tests/fakes/fake_cloudflared.py): starting,
stopping, choosing, and the one-sentence errors (fixtures in conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.http_client import post
from tests.support.ngrok import alive, pids, wait_gone
from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.tunnels import NoTunnel, TunnelConfig, TunnelError, choose, errors, self_check
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel
from vapi_dev.tunnels.cloudflared_agent import public_url_from
from vapi_dev.tunnels.fallback import LocalFallback


def cfg(path: str | None, timeout: float = 10.0, provider: str = "cloudflared") -> TunnelConfig:
    return TunnelConfig(provider=provider, cloudflared_path=path, startup_timeout=timeout)


async def test_quick_tunnel_forwards_and_stops_without_leftovers(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel]
) -> None:
    path, pidfile = fake
    tunnel = choose(cfg(path))
    assert isinstance(tunnel, CloudflaredTunnel)
    made.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None and info.provider == "cloudflared"
    assert info.public_url.startswith("http://127.0.0.1:") and info.public_url != receiver
    ok, detail = await self_check(info.public_url)
    assert ok, detail
    r = await post(info.public_url + "/hook", b"hello")
    assert r.status == 200 and b'"got": "hello"' in r.body
    [pid] = pids(pidfile)
    assert alive(pid) and tunnel.pid == pid
    await tunnel.stop()
    await tunnel.stop()  # idempotent
    assert await wait_gone(pid)


async def test_banner_is_the_fallback_for_the_url(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "banner_only")
    tunnel = CloudflaredTunnel(cfg(fake[0]))
    made.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None
    ok, detail = await self_check(info.public_url)
    assert ok, detail


@pytest.mark.parametrize(
    ("mode", "needles"),
    [
        ("never_ready", ["did not connect to Cloudflare within 1 s", "--public-url"]),
        ("rate_limited", ["429 Too Many Requests", "try again"]),
        ("fail_start", ["exited before the tunnel was up", "fake failure: no route to the edge"]),
        ("unreachable", ["cannot reach Cloudflare", "no such host", "NGROK_AUTHTOKEN"]),
        ("edge_unreachable", ["cannot reach Cloudflare", "port 7844", "--public-url"]),
    ],
)
async def test_failures_are_one_sentence_and_leave_no_process(
    fake: tuple[str, Path],
    receiver: str,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    needles: list[str],
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", mode)
    tunnel = CloudflaredTunnel(cfg(path, timeout=1))
    with pytest.raises(TunnelError) as caught:
        await tunnel.start(receiver)
    for needle in needles:
        assert needle in caught.value.message
    assert "\n" not in caught.value.message
    assert pids(pidfile)
    for pid in pids(pidfile):
        assert await wait_gone(pid)


async def test_too_old_says_how_to_upgrade(
    fake: tuple[str, Path], receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_VERSION", "2021.6.0")
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(path)).start(receiver)
    message = caught.value.message
    assert "version 2021.6.0, too old" in message and "2021.7.0 or later" in message and "upgrade" in message
    assert pids(pidfile) == []  # refused before any tunnel was started
    monkeypatch.setenv("FAKE_CLOUDFLARED_VERSION", "2021.7.0")  # the floor itself is fine
    tunnel = CloudflaredTunnel(cfg(path))
    try:
        assert await tunnel.start(receiver) is not None
    finally:
        await tunnel.stop()


async def test_missing_binary_says_how_to_install(fake: tuple[str, Path], tmp_path: Path, receiver: str) -> None:
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(str(tmp_path / "nope" / "cloudflared"))).start(receiver)
    assert "nope/cloudflared" in caught.value.message and "brew install cloudflared" in caught.value.message
    assert not (tmp_path / "nope").exists()  # a chosen path is never downloaded into
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(None, provider="auto")).start(receiver)  # not asked for: no download
    assert "not installed" in caught.value.message and "--cloudflared-path" in caught.value.message
    with pytest.raises(TunnelError) as caught:
        await choose(cfg(None)).start(receiver)  # asked for: a download, which cannot connect here
    assert caught.value.message.startswith("Couldn't download cloudflared (no connection to http://127.0.0.1:")
    assert "brew install cloudflared" in caught.value.message and "--cloudflared-path" in caught.value.message


async def test_a_file_that_cannot_run_says_to_make_it_executable(tmp_path: Path, receiver: str) -> None:
    plain = tmp_path / "cloudflared"
    plain.write_text("#!/bin/sh\n")  # there, but not executable (as a checkout's tests/fakes/ file is)
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(str(plain))).start(receiver)
    assert f"chmod +x {plain}" in caught.value.message and "brew install" not in caught.value.message


async def test_a_metrics_port_taken_meanwhile_is_tried_again_on_another(
    fake: tuple[str, Path], receiver: str, made: list[CloudflaredTunnel], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, pidfile = fake
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "metrics_port_taken")  # the first run only
    tunnel = CloudflaredTunnel(cfg(path))
    made.append(tunnel)
    info = await tunnel.start(receiver)
    assert info is not None and len(pids(pidfile)) == 2
    ok, detail = await self_check(info.public_url)
    assert ok, detail
    monkeypatch.setenv("FAKE_CLOUDFLARED_RESTART_MODE", "same")  # taken every time: the error, after 3 tries
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(path)).start(receiver)
    assert "address already in use" in caught.value.message and len(pids(pidfile)) == 5


def test_auto_picks_cloudflared_only_when_installed(
    fake: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def picked(tunnel: object) -> object:
        return tunnel.inner if isinstance(tunnel, LocalFallback) else tunnel

    assert isinstance(choose(TunnelConfig()), NoTunnel)
    assert choose(TunnelConfig()).notice == errors.NO_TOKEN_NOTICE  # type: ignore[attr-defined]
    auto = choose(TunnelConfig(cloudflared_path=fake[0]))
    assert isinstance(auto, LocalFallback) and isinstance(auto.inner, CloudflaredTunnel)
    assert isinstance(choose(TunnelConfig(cloudflared_path=fake[0]), local_fallback=False), CloudflaredTunnel)
    monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_PATH", fake[0])
    assert isinstance(picked(choose(TunnelConfig())), CloudflaredTunnel)
    monkeypatch.delenv("VAPI_DEV_CLOUDFLARED_PATH")
    os.symlink(fake[0], tmp_path / "bin" / "cloudflared")
    assert isinstance(picked(choose(TunnelConfig())), CloudflaredTunnel)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2fAkEt0kEnSeCrEt_abcdefghijklmnop")
    assert choose(TunnelConfig()).name == "ngrok"  # a known ngrok token wins


async def test_auto_falls_back_to_local_only_with_a_warning(
    fake: tuple[str, Path], receiver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLOUDFLARED_MODE", "fail_start")
    tunnel = choose(TunnelConfig(cloudflared_path=fake[0], startup_timeout=5))
    heard: list[TunnelChanged | Notice] = []
    tunnel.set_listener(heard.append)
    assert tunnel.name == "cloudflared"
    assert await tunnel.start(receiver) is None
    assert tunnel.name == "none"
    [warning] = heard
    assert isinstance(warning, Notice) and warning.level == "warning"
    assert "local only" in warning.text and "fake failure: no route to the edge" in warning.text
    assert "NGROK_AUTHTOKEN" in warning.text and "--tunnel cloudflared" in warning.text
    await tunnel.stop()
    for pid in pids(fake[1]):
        assert await wait_gone(pid)


def test_public_url_from_hostname() -> None:
    assert public_url_from("a-b-c.trycloudflare.com") == "https://a-b-c.trycloudflare.com"
    assert public_url_from("127.0.0.1:4321") == "http://127.0.0.1:4321"
    assert public_url_from("https://x.trycloudflare.com/") == "https://x.trycloudflare.com"
