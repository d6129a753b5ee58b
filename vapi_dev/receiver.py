"""Where Vapi meets HTTP: each request the proxy reads becomes an Exchange, classified (message type,
call, deadline), verified (secret, bearer, HMAC), forwarded, answered by the fallback when asked, announced
while slow, checked against its reply contract, and emitted to the sinks."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import re
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from vapi_dev.config import Config, bracket_host
from vapi_dev.errors import VapiDevError
from vapi_dev.exchange import (
    DEFAULT_DEADLINE_S,
    AuthResult,
    Event,
    Exchange,
    Finished,
    Notice,
    Pending,
    Problem,
    parse_json,
)
from vapi_dev.proxy.relay import Fallback, Forwarder
from vapi_dev.proxy.server import InboundServer, Limits, Request
from vapi_dev.proxy.wire import Reply, json_error, json_reply
from vapi_dev.tunnels.selfcheck import PING_PREFIX  # reserved for the self-check; never forwarded
from vapi_dev.vapi import auth, contracts
from vapi_dev.vapi import messages as vapi
from vapi_dev.vapi.auth import AuthConfig

PENDING_AFTER_S = 1.0
PENDING_SWEEP_S = 0.2  # one timer looks for slow reply-needed exchanges, instead of one timer per request
GC_GEN0 = 20_000  # sinks hold each exchange ~50-500 ms; a larger young generation stops re-scanning them
PARSE_INLINE_LIMIT = 512 * 1024  # larger JSON bodies are parsed off the event loop
CHECK_INLINE_LIMIT = 256 * 1024  # replies are checked off the loop when request + reply bodies are larger
_JSON_START = re.compile(rb"[ \t\r\n]*[{\[]")  # not body.lstrip(): that copies the whole body


def _check(ex: Exchange) -> list[Problem]:
    """contracts.check_reply, and a warning instead of an exception if a check itself fails."""
    try:
        return contracts.check_reply(ex)
    except Exception as exc:  # a verdict is extra: it must never cost the exchange its Finished event
        return [Problem("warning", "check.failed", f"vapi-dev could not check this reply ({exc!r:.200})")]


def make_verifier(
    cfg: AuthConfig, public_url: Callable[[], str | None], local_url: Callable[[], str]
) -> Callable[[Exchange], AuthResult | None]:
    """Verify each request as the app would, against the URL Vapi signed (the public one)."""

    def verify(ex: Exchange) -> AuthResult | None:
        if ex.request_truncated and cfg.hmac_secret:
            return AuthResult(
                "hmac", False, "the body was too large to hold, so it streamed to the app with its signature unchecked"
            )
        base = (public_url() or local_url()).rstrip("/")
        url = base + ex.path + (f"?{ex.query}" if ex.query else "")
        return auth.verify(cfg, method=ex.method, url=url, headers=ex.headers, body=ex.body)

    return verify


def make_fallback() -> Callable[[Exchange, str], Awaitable[Reply | None]]:
    """``--fallback``: answer for an unreachable or slow app with a valid, clearly marked reply."""

    async def fallback(ex: Exchange, reason: str) -> Reply | None:
        status, body = contracts.fallback_reply(ex, reason)
        headers = [("Content-Type", "application/json"), ("X-Vapi-Dev-Fallback", "1")]
        ex.fallback = True
        ex.record_reply(status, headers, body)
        return Reply(status, body, list(headers))

    return fallback


class ListenError(VapiDevError):
    """The receiver could not start; the message says why and what to do."""


def _tune_gc() -> None:
    # Sinks keep each exchange (and its parsed JSON) alive for a little while; with CPython's default
    # young generation of 700 objects they are traced and promoted again and again (~10 % of the
    # throughput). A larger young generation lets them die first. Process-wide, so never lowered.
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0:
        gc.set_threshold(GC_GEN0, gen1, gen2)


ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def climbs_above_root(path: str) -> bool:
    """Whether ``..`` segments (also written %2e%2e) take ``path`` above its first segment: forwarded
    onto the target's path, such a request could reach the app outside it."""
    depth = 0
    for segment in path.split("/"):
        if "%" in segment:
            segment = segment.replace("%2e", ".").replace("%2E", ".")
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment not in ("", "."):
            depth += 1
    return False


def _refusal(method: str, raw: str) -> Reply | None:
    """vapi-dev's own answer to a request it will not forward, as nginx would answer it; None to forward."""
    if method == "CONNECT":
        reply = json_error(405, "method not allowed", "vapi-dev forwards requests to your app; it is not a proxy")
        reply.headers.append(("Allow", ALLOWED_METHODS))
        return reply
    path = raw.partition("?")[0]
    if (".." in path or "%2" in path) and climbs_above_root(path):  # the common path has neither
        return json_error(400, "bad request", "the path climbs above / with '..' segments")
    return None


class Receiver:
    """Accepts any method on any path and hands each request through the forwarder."""

    def __init__(
        self,
        config: Config,
        forwarder: Forwarder,
        emit: Callable[[Event], None],
        *,
        public_url: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.config = config
        self.forwarder = forwarder
        self.emit = emit
        auth_cfg = config.auth
        self.verifier = (
            make_verifier(auth_cfg, public_url, lambda: self.local_url)
            if auth_cfg is not None and auth_cfg.enabled
            else None
        )
        self.fallback: Fallback | None = make_fallback() if config.fallback else None
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._server: InboundServer | None = None
        self.port = 0
        self._waiting: dict[int, Exchange] = {}  # reply-needed exchanges not yet announced as pending
        self._sweeper: asyncio.TimerHandle | None = None

    @property
    def local_url(self) -> str:
        return f"http://{bracket_host(self.config.host)}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> int:
        _tune_gc()
        cfg = self.config
        limits = Limits(
            max_body=cfg.max_body,
            max_connections=cfg.max_connections,
            max_headers=cfg.max_headers,
            head_timeout=cfg.head_timeout,
            body_timeout=cfg.body_timeout,
            idle_timeout=cfg.idle_timeout,
        )
        server = InboundServer(
            self.handle,
            limits=limits,
            on_error=self._on_error,
            on_notice=lambda text: self.emit(Notice("warning", text)),
        )
        try:
            self.port = await server.start(self.config.host, self.config.port, backlog=1024)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ListenError(
                    f"port {self.config.port} on {self.config.host} is already in use (another vapi-dev?); "
                    "pick another with --port, or --port 0 for any free port"
                ) from None
            if e.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
                raise ListenError(
                    f"cannot listen on {self.config.host}:{self.config.port} ({e.strerror}); check --host and --port"
                ) from None
            raise ListenError(f"cannot listen on {self.config.host}:{self.config.port}: {e}") from None
        self._server = server
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stop accepting, let in-flight exchanges finish (up to ``grace`` seconds), then close."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if self._server is not None:
            self._server.stop_accepting()
        while self.in_flight:  # a loop: a pipelined exchange may start in the turn the last one ends
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), remaining)
        if self._sweeper is not None:  # kept until now: a slow exchange in the grace is still announced
            self._sweeper.cancel()
            self._sweeper = None
        if self._server is not None:
            await self._server.close(max(0.0, deadline - loop.time()))
            self._server = None

    def _on_error(self, exc: Exception) -> None:
        self.emit(Notice("error", f"vapi-dev failed while handling a request: {exc!r}"))

    # -- one request -------------------------------------------------------------------------

    async def handle(self, req: Request) -> None:
        raw = req.target
        if raw.startswith(PING_PREFIX):
            nonce = raw[len(PING_PREFIX) :].split("?", 1)[0]
            req.conn.send(req, json_reply(200, {"ok": True, "nonce": nonce, "source": "vapi-dev"}))
            return
        if req.too_large:
            limit = f"{req.too_large // (1024 * 1024)} MB"
            self.emit(Notice("error", f"{req.method} {raw}: body over {limit} refused with 413, not forwarded"))
            req.conn.send(req, json_error(413, "request too large", f"vapi-dev accepts bodies up to {limit}"))
            return
        raw = raw.partition("#")[0]  # a fragment is the caller's own business (RFC 9110 §4.2.5): never sent on
        if raw[:1] != "/" and "://" in raw:  # absolute form (RFC 9112 §3.2.2): only path and query go on
            parts = urlsplit(raw)
            raw = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        refusal = _refusal(req.method, raw)
        if refusal is not None:
            self.emit(Notice("warning", f"{req.method} {raw}: refused with {refusal.status}, not forwarded"))
            req.keep_alive = req.keep_alive and req.method != "CONNECT"
            req.conn.send(req, refusal)
            return
        self.in_flight += 1
        self._idle.clear()
        try:
            await self._exchange(req, raw)
        finally:
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

    async def _exchange(self, req: Request, raw: str) -> None:
        path, mark, query = raw.partition("?")
        ex = Exchange.begin(req.method, path, query, req.headers, req.body)
        if req.stream is not None:  # over what is held: the rest streams to the app (see proxy/server.py)
            ex.request_truncated = True
            ex.request_bytes = req.declared_length or len(req.body)
        await self._classify(ex)
        target = self.forwarder.target
        ex.forward_url = target.url_for(path, query)
        if mark and not query and not target.query:
            ex.forward_url += "?"  # "/p?" reaches the app as sent
        if self.verifier is not None:
            ex.auth = self.verifier(ex)
            if ex.auth is not None and not ex.auth.ok and self.config.auth is not None and self.config.auth.enforce:
                denied = json_error(401, "unauthorized", f"vapi-dev rejected the request: {ex.auth.reason}")
                ex.error_kind = "auth"
                ex.error = f"not forwarded: authentication failed ({ex.auth.reason})"
                ex.record_reply(denied.status, denied.headers, denied.body)
                with contextlib.suppress(ConnectionError):
                    req.conn.send(req, denied)
                return self._finish(ex)
        if not ex.reply_needed:
            await self.forwarder.forward(ex, req, self.fallback)
            return self._finish(ex)
        key = id(ex)
        self._waiting[key] = ex
        if self._sweeper is None:
            self._sweeper = asyncio.get_running_loop().call_later(PENDING_SWEEP_S, self._sweep)
        try:
            await self.forwarder.forward(ex, req, self.fallback)
        finally:
            self._waiting.pop(key, None)
        self._finish(ex)

    def _sweep(self) -> None:
        """Announce (once) each reply-needed exchange that has waited PENDING_AFTER_S for the app."""
        self._sweeper = None
        now = time.monotonic()
        due = [key for key, ex in self._waiting.items() if now - ex.started >= PENDING_AFTER_S]
        for key in due:
            self.emit(Pending(self._waiting.pop(key)))
        if self._waiting:
            self._sweeper = asyncio.get_running_loop().call_later(PENDING_SWEEP_S, self._sweep)

    def _finish(self, ex: Exchange) -> None:
        """Check the reply and emit Finished: here for most, on a worker thread when the bodies are large.

        The reply has been written to the socket before anything else is done with the exchange. A large
        check (parsing a 2 MB reply, walking 20,000 results) would hold every other exchange up on the loop,
        so it runs on a thread and its Finished comes when it is done: events are in the order exchanges
        are known complete, as a slow reply's already comes after later quick ones; nothing waits behind
        it. The check counts as in flight, so a stop's grace lets it finish and emit.
        """
        ex.finished = time.monotonic()
        small = len(ex.body) + len(ex.response_body) <= CHECK_INLINE_LIMIT
        if small or not ex.reply_needed or ex.message_type is None:  # quick: no large reply to parse and walk
            ex.problems.extend(_check(ex))
            self.emit(Finished(ex))
            return
        self.in_flight += 1
        self._idle.clear()

        def checked(done: asyncio.Future[list[Problem]]) -> None:
            if not done.cancelled():
                ex.problems.extend(done.result())
            self.emit(Finished(ex))
            self.in_flight -= 1
            if not self.in_flight:
                self._idle.set()

        asyncio.get_running_loop().run_in_executor(None, _check, ex).add_done_callback(checked)

    async def _classify(self, ex: Exchange) -> None:
        body = ex.body
        # A truncated body (only its first part is held) cannot be parsed: no use scanning it.
        if not ex.request_truncated and (body[:1] in (b"{", b"[") or _JSON_START.match(body)):
            if len(body) <= PARSE_INLINE_LIMIT:
                ex.payload = parse_json(body)
            else:
                ex.payload = await asyncio.to_thread(parse_json, body)
        mtype, ex.call_id = vapi.read_message(ex.payload)
        info = vapi.type_info(mtype)
        ex.message_type = vapi.normalise_type(mtype) if mtype else None  # normalised once, here
        ex.reply_needed = info.reply_needed
        ex.deadline_s = self.config.timeout or info.deadline_s or DEFAULT_DEADLINE_S
