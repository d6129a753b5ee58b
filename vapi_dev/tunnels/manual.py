"""The "manual" provider: a public URL from a tunnel the user runs themselves (cloudflared, Funnel, …)."""

from __future__ import annotations

from vapi_dev.tunnels.base import Listener, TunnelInfo, validate_public_url


class ManualTunnel:
    """Reports the user's --public-url; starts and stops nothing."""

    name = "manual"

    def __init__(self, public_url: str) -> None:
        self.public_url = validate_public_url(public_url)

    async def start(self, local_url: str) -> TunnelInfo | None:
        return TunnelInfo(public_url=self.public_url, provider=self.name)

    async def stop(self) -> None:
        return None

    def set_listener(self, cb: Listener) -> None:
        # We cannot watch a tunnel we do not run; the self-check is the only health signal.
        return None
