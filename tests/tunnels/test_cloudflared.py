"""The cloudflared provider against the fake cloudflared (tests/fakes/fake_cloudflared.py)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.fake_cloudflared import install
from tests.support.http_client import post
from tests.support.ngrok import alive, kill_leftovers, pids, wait_gone
from vapi_dev.tunnels import NoTunnel, TunnelConfig, TunnelError, choose, errors, self_check
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel, public_url_from


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """(path of the fake cloudflared, its pidfile); PATH holds nothing else of ours."""
    for var in ("NGROK_AUTHTOKEN", "VAPI_DEV_CLOUDFLARED_PATH", "FAKE_CLOUDFLARED_MODE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "bin").mkdir()
    (tmp_path / "tools").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    pidfile = tmp_path / "cloudflared.pids"
    monkeypatch.setenv("FAKE_CLOUDFLARED_PIDFILE", str(pidfile))
    yield install(tmp_path / "tools" / "cloudflared"), pidfile
    kill_leftovers(pidfile)


@pytest.fixture
async def made() -> AsyncIterator[list[CloudflaredTunnel]]:
    tunnels: list[CloudflaredTunnel] = []
    yield tunnels
    for t in tunnels:
        await t.stop()


def cfg(path: str | None, timeout: float = 10.0) -> TunnelConfig:
    return TunnelConfig(provider="cloudflared", cloudflared_path=path, startup_timeout=timeout)


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
    assert alive(pid)
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
    for pid in pids(pidfile):
        assert await wait_gone(pid)


async def test_missing_binary_says_how_to_install(fake: tuple[str, Path], tmp_path: Path, receiver: str) -> None:
    with pytest.raises(TunnelError) as caught:
        await CloudflaredTunnel(cfg(str(tmp_path / "nope" / "cloudflared"))).start(receiver)
    assert "nope/cloudflared" in caught.value.message and "brew install cloudflared" in caught.value.message
    with pytest.raises(TunnelError) as caught:
        await choose(cfg(None)).start(receiver)  # not on PATH either
    assert "not installed" in caught.value.message and "--cloudflared-path" in caught.value.message


def test_auto_picks_cloudflared_only_when_installed(
    fake: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(choose(TunnelConfig()), NoTunnel)
    assert choose(TunnelConfig()).notice == errors.NO_TOKEN_NOTICE  # type: ignore[union-attr]
    assert isinstance(choose(TunnelConfig(cloudflared_path=fake[0])), CloudflaredTunnel)
    monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_PATH", fake[0])
    assert isinstance(choose(TunnelConfig()), CloudflaredTunnel)
    monkeypatch.delenv("VAPI_DEV_CLOUDFLARED_PATH")
    os.symlink(fake[0], tmp_path / "bin" / "cloudflared")
    assert isinstance(choose(TunnelConfig()), CloudflaredTunnel)
    monkeypatch.setenv("NGROK_AUTHTOKEN", "2fAkEt0kEnSeCrEt_abcdefghijklmnop")
    assert choose(TunnelConfig()).name == "ngrok"  # a known ngrok token wins


def test_public_url_from_hostname() -> None:
    assert public_url_from("a-b-c.trycloudflare.com") == "https://a-b-c.trycloudflare.com"
    assert public_url_from("127.0.0.1:4321") == "http://127.0.0.1:4321"
    assert public_url_from("https://x.trycloudflare.com/") == "https://x.trycloudflare.com"
