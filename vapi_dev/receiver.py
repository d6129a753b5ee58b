"""The local HTTP receiver: reads each request, builds its Exchange, forwards it and relays the reply."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_parser import RawRequestMessage

from vapi_dev import vapi
from vapi_dev.config import Config
from vapi_dev.exchange import Event, Exchange, Finished, Notice, Started
from vapi_dev.forwarder import Forwarder, json_error
from vapi_dev.tunnels.selfcheck import PING_PREFIX  # reserved for the self-check; never forwarded

PENDING_AFTER_S = 1.0
PENDING_SWEEP_S = 0.2  # one timer looks for slow reply-needed exchanges, instead of one timer per request
GC_GEN0 = 20_000  # sinks hold each exchange ~50-500 ms; a larger young generation stops re-scanning them
PARSE_INLINE_LIMIT = 512 * 1024  # larger JSON bodies are parsed off the event loop

Verifier = Callable[[Exchange], Any]  # returns AuthResult | None
Checker = Callable[[Exchange], list[Any]]  # returns list[Problem]
Fallback = Callable[[Exchange, str], Awaitable[web.StreamResponse | None]]


class ListenError(Exception):
    """The receiver could not start; the message says why and what to do."""


def _parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _tune_gc() -> None:
    # Sinks keep each exchange (and its parsed JSON) alive for a little while; with CPython's default
    # young generation of 700 objects they are traced and promoted again and again (~10 % of the
    # throughput). A larger young generation lets them die first. Process-wide, so never lowered.
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0:
        gc.set_threshold(GC_GEN0, gen1, gen2)


class Receiver:
    """Accepts any method on any path and hands each request through the forwarder."""

    def __init__(
        self,
        config: Config,
        forwarder: Forwarder,
        emit: Callable[[Event], None],
        *,
        verifier: Verifier | None = None,
        checker: Checker | None = None,
        fallback: Fallback | None = None,
    ) -> None:
        self.config = config
        self.forwarder = forwarder
        self.emit = emit
        self.verifier = verifier
        self.checker = checker
        self.fallback = fallback
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._runner: web.ServerRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0
        self._waiting: dict[int, Exchange] = {}  # reply-needed exchanges not yet announced as pending
        self._sweeper: asyncio.TimerHandle | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, grace: float = 5.0) -> int:
        loop = asyncio.get_running_loop()
        _tune_gc()
        max_size = self.config.max_body

        def make_request(message: RawRequestMessage, payload: Any, protocol: Any, writer: Any,
                         task: asyncio.Task[None]) -> web.BaseRequest:
            return web.BaseRequest(message, payload, protocol, writer, task, loop, client_max_size=max_size)

        server = web.Server(self.handle, request_factory=make_request)
        self._runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=grace)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.config.host, self.config.port, backlog=1024)
        try:
            await self._site.start()
        except OSError as e:
            await self._runner.cleanup()
            if e.errno == errno.EADDRINUSE:
                raise ListenError(
                    f"port {self.config.port} on {self.config.host} is already in use (another vapi-dev?); "
                    "pick another with --port, or --port 0 for any free port") from None
            if e.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise ListenError(f"cannot listen on {self.config.host}:{self.config.port} "
                                  f"({e.strerror}); check --host and --port") from None
            raise ListenError(f"cannot listen on {self.config.host}:{self.config.port}: {e}") from None
        sockets = getattr(self._site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.config.port
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight exchanges finish (up to ``grace`` seconds), then close."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._site is not None:
            server = self._site._server
            if server is not None:
                server.close()  # stop accepting new connections
        if self.in_flight:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), grace)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- one request -------------------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith(PING_PREFIX):
            nonce = raw[len(PING_PREFIX):].split("?", 1)[0]
            return web.json_response({"ok": True, "nonce": nonce, "source": "vapi-dev"})
        self.in_flight += 1
        self._idle.clear()
        try:
            return await self._exchange(request, raw)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def _exchange(self, request: web.BaseRequest, raw: str) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            limit = f"{self.config.max_body // (1024 * 1024)} MB"
            self.emit(Notice("error", f"{request.method} {raw}: body over {limit} refused with 413, not forwarded"))
            return json_error(413, "request too large", f"vapi-dev accepts bodies up to {limit}")
        path, _, query = raw.partition("?")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        ex = Exchange.begin(request.method, path, query, headers, body)
        await self._classify(ex)
        ex.forward_url = self.forwarder.target.url_for(path, query)
        if self.verifier is not None:
            ex.auth = self.verifier(ex)
            if ex.auth is not None and not ex.auth.ok and getattr(self.config.auth, "enforce", False):
                denied = json_error(401, "unauthorized", f"vapi-dev rejected the request: {ex.auth.reason}")
                ex.status, ex.error_kind = 401, "auth"
                ex.error = f"not forwarded: authentication failed ({ex.auth.reason})"
                ex.response_body = denied.body if isinstance(denied.body, bytes) else b""
                ex.response_bytes = len(ex.response_body)
                ex.response_headers = list(denied.headers.items())
                return await self._send(request, ex, denied)
        if not ex.reply_needed:
            return await self._send(request, ex, await self.forwarder.forward(ex, request, self.fallback))
        key = id(ex)
        self._waiting[key] = ex
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(PENDING_SWEEP_S, self._sweep)
        try:
            resp = await self.forwarder.forward(ex, request, self.fallback)
        finally:
            self._waiting.pop(key, None)
        return await self._send(request, ex, resp)

    def _sweep(self) -> None:
        """Announce (once) each reply-needed exchange that has waited PENDING_AFTER_S for the app."""
        self._sweeper = None
        now = time.monotonic()
        due = [key for key, ex in self._waiting.items() if now - ex.started >= PENDING_AFTER_S]
        for key in due:
            self.emit(Started(self._waiting.pop(key)))
        if self._waiting:
            self._sweeper = asyncio.get_running_loop().call_later(PENDING_SWEEP_S, self._sweep)

    async def _send(self, request: web.BaseRequest, ex: Exchange,
                    resp: web.StreamResponse) -> web.StreamResponse:
        # Send the reply before anything else is done with the exchange.
        try:
            if not resp.prepared:
                await resp.prepare(request)
                await resp.write_eof()
        except (ConnectionError, RuntimeError) as e:
            ex.error = ex.error or f"the caller went away before the reply was sent ({type(e).__name__})"
            ex.error_kind = ex.error_kind or "reset"
        ex.finished = time.monotonic()
        if self.checker is not None:
            ex.problems.extend(self.checker(ex))
        self.emit(Finished(ex))
        return resp

    async def _classify(self, ex: Exchange) -> None:
        body = ex.body
        if body[:1] in (b"{", b"[") or body.lstrip()[:1] in (b"{", b"["):
            if len(body) <= PARSE_INLINE_LIMIT:
                ex.payload = _parse_json(body)
            else:
                ex.payload = await asyncio.to_thread(_parse_json, body)
        mtype, ex.call_id = vapi.read_message(ex.payload)
        info = vapi.type_info(mtype)
        ex.message_type = mtype
        ex.reply_needed = info.reply_needed
        ex.deadline_s = self.config.timeout or info.deadline_s or vapi.DEFAULT_DEADLINE_S
