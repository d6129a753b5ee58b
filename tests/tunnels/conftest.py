"""Fixtures the tunnel tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_cloudflared import install
from tests.support.net import free_port
from tests.support.ngrok import kill_leftovers, make_receiver
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel


@pytest.fixture
async def receiver(aiohttp_server: Any) -> str:
    """A stand-in receiver (answers the self-check ping) on a free port: its local URL."""
    server = await aiohttp_server(make_receiver())
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """(path of the fake cloudflared, its pidfile); PATH holds nothing else of ours, no ngrok token is known,
    and no download can leave the machine (the release URL is a closed loopback port unless a test sets it)."""
    for var in ("NGROK_AUTHTOKEN", "VAPI_DEV_CLOUDFLARED_PATH", "FAKE_CLOUDFLARED_MODE"):
        monkeypatch.delenv(var, raising=False)
    for var in ("DIE_AFTER", "DIE_AFTER_REQUESTS", "UNREADY_AFTER", "RESTART_MODE", "VERSION"):
        monkeypatch.delenv(f"FAKE_CLOUDFLARED_{var}", raising=False)
    monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_RELEASE_URL", f"http://127.0.0.1:{free_port()}/releases")
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
    """Tunnels a test started; stopped at the end whatever happened."""
    tunnels: list[CloudflaredTunnel] = []
    yield tunnels
    for t in tunnels:
        await t.stop()
