"""`--tunnel auto`'s safety net: a provider that fails to start leaves the run local only, with a warning.

Only `auto` wraps its pick in LocalFallback (an explicitly asked-for provider still stops the run with its
error), and only when no Vapi resource waits for the public URL (--assistant/--phone-number/--tool/--org).
"""

from __future__ import annotations

from collections.abc import Callable

from vapi_dev.exchange import Notice
from vapi_dev.tunnels.base import Listener, Tunnel, TunnelError, TunnelInfo


class LocalFallback:
    """Starts ``inner``; on a TunnelError warns (``warning(error)``) and goes on without a public URL."""

    def __init__(self, inner: Tunnel, warning: Callable[[TunnelError], str]) -> None:
        self.inner = inner
        self._warning = warning
        self._listener: Listener | None = None
        self.fell_back = False

    @property
    def name(self) -> str:
        return "none" if self.fell_back else self.inner.name

    def set_listener(self, cb: Listener) -> None:
        self._listener = cb
        self.inner.set_listener(cb)

    async def start(self, local_url: str) -> TunnelInfo | None:
        try:
            return await self.inner.start(local_url)
        except TunnelError as exc:
            self.fell_back = True
            if self._listener is not None:
                self._listener(Notice("warning", self._warning(exc)))
            return None

    async def stop(self) -> None:
        await self.inner.stop()
