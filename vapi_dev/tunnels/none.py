"""The "none" provider: local only, optionally carrying a notice that says how to get a public URL."""

from __future__ import annotations

from vapi_dev.tunnels.base import Listener, TunnelInfo


class NoTunnel:
    """No public URL. ``notice`` (if set) is shown to the user as a yellow hint."""

    name = "none"

    def __init__(self, notice: str | None = None) -> None:
        self.notice = notice

    async def start(self, local_url: str) -> TunnelInfo | None:
        return None

    async def stop(self) -> None:
        return None

    def set_listener(self, cb: Listener) -> None:
        # Nothing can change: there is no tunnel to lose.
        return None
