"""Forwards one request to the developer's app over the keep-alive pool and relays the reply to the
caller: whole replies in one write, streaming ones chunk by chunk as they arrive; 502/504 on failure."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from vapi_dev.config import Target
from vapi_dev.exchange import Exchange, Headers, header
from vapi_dev.proxy.client import IDEMPOTENT, BodySource, Pool, UpstreamConnection, UpstreamError
from vapi_dev.proxy.server import BodyError, BodyStream, Request
from vapi_dev.proxy.wire import HOP_BY_HOP, Reply, encode_head, filter_headers, json_error

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - aiohttp depends on async-timeout below 3.11
    from async_timeout import timeout as _timeout

CAPTURE_LIMIT = 4 * 1024 * 1024  # reply bytes kept for display and the journal; the relay is unlimited
BUFFER_LIMIT = 1024 * 1024  # replies up to this size with a Content-Length are sent in one piece
STREAM_TYPES = ("text/event-stream", "audio/", "application/octet-stream", "application/x-ndjson")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})  # always get a Content-Length, even when empty
# Expect: 100-continue was answered by the receiver, which holds the whole body by now
REQUEST_DROP = HOP_BY_HOP | {"expect"}

Fallback = Callable[[Exchange, str], Awaitable[Reply | None]]


class _Rest:
    """A streamed request body on its way to the app: counts its bytes onto the exchange and moves the
    reply deadline on with each piece (an upload may take longer than the deadline; the app's answer not)."""

    __slots__ = ("_deadline", "_ex", "_loop", "_stream")

    def __init__(self, ex: Exchange, stream: BodyStream, deadline: Any) -> None:
        self._ex = ex
        self._stream = stream
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()

    async def read(self) -> bytes:
        # While waiting for the caller the app's deadline does not run (a stalled caller gets the body
        # timeout's 408, not a 504 that blames the app); it starts again with each piece sent on.
        self._reschedule(None)
        chunk = await self._stream.read()
        self._ex.request_bytes = len(self._ex.body) + self._stream.received
        self._reschedule(self._loop.time() + self._ex.deadline_s)
        return chunk

    def _reschedule(self, when: float | None) -> None:
        reschedule = getattr(self._deadline, "reschedule", None)
        if reschedule is not None:  # asyncio.timeout (3.11+)
            reschedule(when)
        else:  # async-timeout (3.10)
            self._deadline.update(self._loop.time() + 10**9 if when is None else when)


def _is_streaming(conn: UpstreamConnection) -> bool:
    if conn.complete:
        return False  # the whole reply is already here
    if conn.content_length is None or conn.content_length > BUFFER_LIMIT:
        return True
    ctype = (header(conn.headers, "content-type") or "").lower()
    return any(ctype.startswith(t) for t in STREAM_TYPES)


def _ssl_context(target: Target, insecure: bool) -> ssl.SSLContext | None:
    if target.scheme != "https":
        return None
    ctx = ssl.create_default_context()
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Forwarder:
    """Owns the connection pool to the app (keep-alive, no redirects) used for every forward."""

    def __init__(self, target: Target, *, insecure: bool = False) -> None:
        self.target = target
        self.insecure = insecure
        self._origin = f"{target.scheme}://{target.netloc}"
        self._pool: Pool | None = None

    async def start(self) -> None:
        self._pool = Pool(self.target, _ssl_context(self.target, self.insecure))

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _request_head(self, ex: Exchange, req: Request, target: str) -> bytes:
        prior = header(ex.headers, "x-forwarded-for")
        forwarded_for = ("X-Forwarded-For", f"{prior}, {req.peer}" if prior else req.peer)
        headers: Headers = []
        replaced = has_proto = has_host = False
        for k, v in filter_headers(ex.headers, REQUEST_DROP):
            lk = k.lower()
            if lk == "x-forwarded-for":  # replaced where it first appeared
                if not replaced:
                    headers.append(forwarded_for)
                    replaced = True
                continue
            if lk == "x-forwarded-proto":
                has_proto = True
            elif lk == "x-forwarded-host":
                has_host = True
            headers.append((k, v))
        headers.append(("Host", self.target.netloc))
        if not replaced:
            headers.append(forwarded_for)
        if not has_proto:
            headers.append(("X-Forwarded-Proto", req.scheme))
        if not has_host:
            headers.append(("X-Forwarded-Host", req.host))
        if req.stream is not None:  # the body is still arriving: its length as declared, else chunked
            declared = req.declared_length
            length = "Transfer-Encoding: chunked\r\n" if declared is None else f"Content-Length: {declared}\r\n"
        elif ex.body or ex.method in BODY_METHODS:
            length = f"Content-Length: {len(ex.body)}\r\n"
        else:
            length = ""
        return encode_head(f"{ex.method} {target} HTTP/1.1", headers, length)

    async def _send(self, ex: Exchange, head: bytes, body: bytes, rest: BodySource | None = None) -> UpstreamConnection:
        assert self._pool is not None, "Forwarder.start() not called"
        head_only = ex.method == "HEAD"
        for attempt in (1, 2):
            # The retry takes a fresh connection: another pooled one may have gone stale the same way.
            conn = await self._pool.acquire(fresh=attempt == 2)
            try:
                await conn.send(head, body, head_only, rest)
                return conn
            except UpstreamError as e:
                conn.close()
                # Once more when the app cannot have read any of it (then even a POST, even with its body
                # still streaming: none of that was taken yet); or, for an idempotent request whose body is all
                # held here, when a reused connection ended (or was reset) before any reply byte. A POST is not
                # sent twice on a guess: an app that read it and then aborted looks the same.
                retry = e.unsent or (rest is None and (e.unread or e.stale) and ex.method in IDEMPOTENT)
                if attempt == 2 or not retry:
                    raise
            except BaseException:
                conn.close()
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def forward(self, ex: Exchange, req: Request, fallback: Fallback | None = None) -> None:
        """Send ``ex`` to the app and relay the reply to ``req``'s connection; fills the reply side of ``ex``."""
        url = ex.forward_url or self.target.url_for(ex.path, ex.query)
        ex.forward_url = url
        # OPTIONS * (asterisk form) asks about the server itself: it is not mapped onto the target path
        request_target = "*" if ex.path == "*" else url[len(self._origin) :] or "/"
        head = self._request_head(ex, req, request_target)
        conn: UpstreamConnection | None = None
        body, rest = ex.body, None
        try:
            async with _timeout(ex.deadline_s) as deadline:
                if req.stream is not None:
                    rest = _Rest(ex, req.stream, deadline)
                    if body and req.declared_length is None:
                        body = b"%x\r\n%b\r\n" % (len(body), body)  # sent chunked: the held part is the first chunk
                conn = await self._send(ex, head, body, rest)
                ex.first_byte = time.monotonic()
                if not _is_streaming(conn):
                    body = await conn.read_all()
                    self._relay_whole(ex, req, conn, body)
                    return
        except BodyError as e:  # the caller stopped sending its body (or hung up): the app gets no more of it
            if conn is not None:
                conn.close()
            req.keep_alive = False
            ex.error, ex.error_kind = e.text, "reset"
            if e.status != 400 and not req.conn.started:
                reply = json_error(e.status, "request timeout" if e.status == 408 else "request too large", e.text)
                ex.record_reply(reply.status, reply.headers, reply.body)
                with contextlib.suppress(ConnectionError):
                    req.conn.send(req, reply)
            return
        except (asyncio.TimeoutError, UpstreamError) as e:
            if conn is not None:
                conn.close()
            if isinstance(e, UpstreamError):
                return await self._fail(ex, req, fallback, 502, e.kind, e.text)
            return await self._fail(ex, req, fallback, 504, "timeout", self._timeout_text(ex))
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        await self._relay_stream(ex, req, conn)

    def _relay_whole(self, ex: Exchange, req: Request, conn: UpstreamConnection, body: bytes) -> None:
        assert self._pool is not None
        self._pool.release(conn)
        ex.status = conn.status
        ex.response_headers = conn.headers
        ex.response_body = body[:CAPTURE_LIMIT] if len(body) > CAPTURE_LIMIT else body
        ex.response_truncated = len(body) > CAPTURE_LIMIT
        ex.response_bytes = len(body)
        try:
            req.conn.send_whole(
                req, conn.status, conn.reason.decode("latin-1"), filter_headers(conn.headers), body, conn.content_length
            )
        except ConnectionError:
            self._caller_gone(ex)

    async def _relay_stream(self, ex: Exchange, req: Request, conn: UpstreamConnection) -> None:
        assert self._pool is not None
        ex.streamed = True
        ex.status = conn.status
        ex.response_headers = conn.headers
        out = req.conn
        captured = bytearray()
        # A caller that hangs up while the app is quiet must not keep the app's stream open.
        out.on_lost = lambda: conn.cancel("the caller went away during the reply")
        try:
            out.start(
                req, conn.status, conn.reason.decode("latin-1"), filter_headers(conn.headers), conn.content_length
            )
            while True:
                chunk = conn.take()
                if chunk:
                    ex.response_bytes += len(chunk)
                    room = CAPTURE_LIMIT - len(captured)
                    if room > 0:
                        captured += chunk[:room]
                    if len(chunk) > room:
                        ex.response_truncated = True
                    await out.write(chunk)
                if conn.complete and not conn.chunks:
                    break
                await conn.wait()
            out.end()
            self._pool.release(conn)
        except (UpstreamError, ConnectionError) as e:
            conn.close()
            req.keep_alive = False  # the caller must not mistake a cut reply for a whole one
            if not out.started:
                self._caller_gone(ex)
            else:
                why = e.text if isinstance(e, UpstreamError) else type(e).__name__
                ex.error_kind = "reset"
                ex.error = f"the reply stream broke after {ex.response_bytes} bytes ({why})"
        finally:
            out.on_lost = None
            ex.response_body = bytes(captured)

    @staticmethod
    def _caller_gone(ex: Exchange) -> None:
        ex.error = ex.error or "the caller went away before the reply was sent"
        ex.error_kind = ex.error_kind or "reset"

    async def _fail(
        self, ex: Exchange, req: Request, fallback: Fallback | None, status: int, kind: str, text: str
    ) -> None:
        ex.error, ex.error_kind = text, kind
        reply = await fallback(ex, text) if fallback is not None else None
        if reply is None:
            reply = json_error(status, "gateway timeout" if status == 504 else "bad gateway", text)
            ex.record_reply(status, reply.headers, reply.body)
        try:
            req.conn.send(req, reply)
        except ConnectionError:
            self._caller_gone(ex)

    def _timeout_text(self, ex: Exchange) -> str:
        what = ex.message_type or f"{ex.method} {ex.path}"
        return (
            f"{what}: your app did not reply within the {ex.deadline_s:g} s deadline "
            f"({self.target.netloc}); Vapi would have given up"
        )
