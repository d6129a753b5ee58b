"""serve(): starts forwarder, receiver, tunnel and hooks in order, and stops them in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from vapi_dev.config import Config
from vapi_dev.exchange import Event, Notice, Ready, Sink, TunnelChanged
from vapi_dev.proxy.relay import Forwarder
from vapi_dev.receiver import Receiver

if TYPE_CHECKING:
    from vapi_dev.tunnels.base import Tunnel, TunnelInfo

STOP_GRACE_S = 5.0


class Hook(Protocol):
    """Something that reacts to the public URL (pointing Vapi resources at it) and restores on stop."""

    async def on_public_url(self, public_url: str) -> None: ...

    async def on_stop(self) -> None: ...


class Bus:
    """Hands every event to every sink; sinks return at once.

    A sink that raises loses that event, not the others' (nor the receiver's exchange): the first time,
    the other sinks get a Notice saying so.
    """

    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = list(sinks)
        self._broken: set[int] = set()  # id() of sinks that have raised, reported once each

    def emit(self, event: Event) -> None:
        for sink in self.sinks:
            try:
                sink.emit(event)
            except Exception as exc:
                self._failed(sink, exc)

    def _failed(self, sink: Sink, exc: Exception) -> None:
        if id(sink) in self._broken:
            return
        self._broken.add(id(sink))
        notice = Notice(
            "error", f"vapi-dev: {type(sink).__name__} failed on an event ({exc!r:.200}); forwarding goes on"
        )
        for other in self.sinks:
            if other is not sink:
                with contextlib.suppress(Exception):
                    other.emit(notice)

    async def aclose(self) -> None:
        # In reverse: the journal (added last) flushes first, so a notice about its last write reaches the
        # stream, which is still open; sleep(0) lets such a notice, sent from a thread, arrive.
        for sink in reversed(self.sinks):
            with contextlib.suppress(Exception):
                await sink.aclose()
            await asyncio.sleep(0)


class Session:
    """One listen run. ``tunnel`` follows the tunnels.Tunnel protocol (or is None: local only)."""

    def __init__(
        self,
        config: Config,
        bus: Bus,
        *,
        tunnel: Tunnel | None = None,
        hooks: Sequence[Hook] = (),
        tunnel_note: str | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.bus = bus
        self.tunnel = tunnel
        self.hooks = list(hooks)
        self.tunnel_note = tunnel_note
        self.public_url: str | None = None
        self.forwarder = Forwarder(config.forward_to, insecure=config.insecure)
        self.receiver = Receiver(config, self.forwarder, bus.emit, public_url=lambda: self.public_url)
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_ready = on_ready  # e.g. stop a progress spinner
        self._ready = False
        self._stopping = False
        self._deferred: list[Event] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def add_hook(self, hook: Hook) -> None:
        """Add a hook before ``run``: hooks are built after the session, since they report through it."""
        self.hooks.append(hook)

    def notice(self, event: Event) -> None:
        """Emit ``event``, or hold it until the Ready event when it comes before (the ready line is first)."""
        if self._ready:
            self.bus.emit(event)
        else:
            self._deferred.append(event)

    def notice_threadsafe(self, event: Event) -> None:
        """``notice`` from any thread (the journal's writer): handed to the loop, dropped once it has ended."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed in between
            loop.call_soon_threadsafe(self.notice, event)

    @property
    def local_url(self) -> str:
        return self.receiver.local_url

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set. Raises ListenError / TunnelError before Ready on failure."""
        self._loop = asyncio.get_running_loop()
        await self.forwarder.start()
        try:
            await self.receiver.start()
            try:
                await self._up(stop)
            finally:
                await self.receiver.stop(STOP_GRACE_S)
                await self._down()
        finally:
            await self.forwarder.close()

    async def _up(self, stop: asyncio.Event) -> None:
        inspect_url = None
        note = self.tunnel_note
        if self.tunnel is not None:
            self.tunnel.set_listener(self._on_tunnel_event)
            info = await self._start_tunnel(self.tunnel, stop)
            if stop.is_set():  # asked to stop while the tunnel started (or downloaded): no ready line
                return
            if info is not None:
                self.public_url = info.public_url
                inspect_url = info.inspect_url
                note = await self._self_check(info.public_url)
        if self.on_ready is not None:
            self.on_ready()
        self.bus.emit(
            Ready(
                local_url=self.local_url,
                forward_to=self.config.forward_to.url,
                public_url=self.public_url,
                tunnel=getattr(self.tunnel, "name", "none"),
                inspect_url=inspect_url,
                note=note,
            )
        )
        self._ready = True
        for event in self._deferred:
            self.bus.emit(event)
        self._deferred.clear()
        if self.public_url:
            for hook in self.hooks:
                await hook.on_public_url(self.public_url)
        await stop.wait()

    async def _start_tunnel(self, tunnel: Tunnel, stop: asyncio.Event) -> TunnelInfo | None:
        """``tunnel.start``, cancelled when ``stop`` is set first: a Ctrl-C or SIGTERM while cloudflared
        downloads or waits to connect stops the run at once (a tunnel stops its agent when cancelled)."""
        starting = asyncio.ensure_future(tunnel.start(self.local_url))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if starting.done():
            return starting.result()  # a TunnelError is raised here, as before
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping anyway: its error is moot
            await starting
        return None

    async def _self_check(self, public_url: str) -> str | None:
        from vapi_dev.tunnels import self_check

        ok, detail = await self_check(public_url)
        return f"self-check through the public URL: {'ok' if ok else 'FAILED'} — {detail}"

    def _on_tunnel_event(self, event: TunnelChanged | Notice) -> None:
        self.notice(event)  # one said while the tunnel starts (a download, auto's fallback) follows the ready line
        if self._stopping:  # a tunnel restored while stopping must not re-point resources being restored
            return
        if isinstance(event, TunnelChanged) and event.up and event.public_url and event.public_url != self.public_url:
            self.public_url = event.public_url
            task = asyncio.get_running_loop().create_task(self._repoint(event.public_url))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _repoint(self, url: str) -> None:
        for hook in self.hooks:
            try:
                await hook.on_public_url(url)
            except Exception as e:
                self.bus.emit(Notice("error", f"could not point Vapi at the new URL: {e}"))

    async def _down(self) -> None:
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()
        for hook in reversed(self.hooks):
            try:
                await hook.on_stop()
            except Exception as e:
                self.bus.emit(Notice("error", f"while restoring: {e}"))
        if self.tunnel is not None:
            try:
                await self.tunnel.stop()
            except Exception as e:
                self.bus.emit(Notice("error", f"while stopping the tunnel: {e}"))
