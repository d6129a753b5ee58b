"""One live round trip through a real Cloudflare quick tunnel: runs only when a real `cloudflared` is on PATH
and trycloudflare.com is reachable; skipped at once otherwise (as it is offline, in CI and here)."""

from __future__ import annotations

import asyncio
import shutil
import socket

import pytest

from tests.support.ngrok import wait_gone
from vapi_dev.tunnels import TunnelConfig, self_check
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel


def reaches_cloudflare() -> bool:
    try:
        with socket.create_connection(("api.trycloudflare.com", 443), timeout=3):
            return True
    except OSError:
        return False


@pytest.mark.live
async def test_live_quick_tunnel_round_trip(receiver: str) -> None:
    path = shutil.which("cloudflared")
    if path is None:
        pytest.skip("needs a real cloudflared on PATH")
    if not reaches_cloudflare():
        pytest.skip("needs a network that reaches api.trycloudflare.com")
    tunnel = CloudflaredTunnel(TunnelConfig(provider="cloudflared", cloudflared_path=path, startup_timeout=60))
    try:
        info = await tunnel.start(receiver)
        assert info is not None and info.public_url.endswith(".trycloudflare.com")
        ok, detail = False, ""
        for _ in range(10):  # a new name takes a few seconds to resolve
            ok, detail = await self_check(info.public_url, timeout=15)
            if ok:
                break
            await asyncio.sleep(2)
        assert ok, detail
        pid = tunnel.pid
    finally:
        await tunnel.stop()
    assert pid is not None and await wait_gone(pid)
