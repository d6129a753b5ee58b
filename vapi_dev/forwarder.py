"""Forwards one request to the developer's app with the one shared client session; streams the reply back."""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from vapi_dev.config import Target
from vapi_dev.exchange import Exchange, Headers

if sys.version_info >= (3, 11):
    from asyncio import timeout as _timeout
else:  # pragma: no cover - aiohttp depends on async-timeout below 3.11
    from async_timeout import timeout as _timeout

# RFC 9110 §7.6.1 connection-specific headers, plus the framing headers aiohttp recomputes.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
        "Proxy-Authenticate", "Proxy-Authorization", "Content-Length", "Host",
    )
)
CAPTURE_LIMIT = 4 * 1024 * 1024  # reply bytes kept for display and the journal; the relay is unlimited
BUFFER_LIMIT = 1024 * 1024  # replies up to this size with a Content-Length are sent in one piece
STREAM_TYPES = ("text/event-stream", "audio/", "application/octet-stream", "application/x-ndjson")


def _is_streaming(resp: aiohttp.ClientResponse) -> bool:
    if resp.content_length is None:
        return True
    if resp.content_length > BUFFER_LIMIT:
        return True
    ctype = resp.headers.get("Content-Type", "").lower()
    return any(ctype.startswith(t) for t in STREAM_TYPES)


def json_error(status: int, error: str, detail: str) -> web.Response:
    body = json.dumps({"error": error, "detail": detail, "source": "vapi-dev"}).encode()
    return web.Response(status=status, body=body, content_type="application/json")


def raw_headers(resp: aiohttp.ClientResponse) -> Headers:
    """The reply's headers exactly as the app sent them (names keep their case, repeats are kept)."""
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.raw_headers]


def _filter(headers: Headers, drop: frozenset[str] = HOP_BY_HOP) -> Headers:
    """``headers`` without hop-by-hop ones (including those named in Connection), order kept."""
    extra: set[str] | None = None
    for k, v in headers:
        if k.lower() == "connection":
            if extra is None:
                extra = set()
            extra.update(t.strip().lower() for t in v.split(","))
    if extra is None:
        return [(k, v) for k, v in headers if k.lower() not in drop]
    return [(k, v) for k, v in headers if k.lower() not in drop and k.lower() not in extra]


class Forwarder:
    """Owns the aiohttp ClientSession (keep-alive, no redirects) used for every forward."""

    def __init__(self, target: Target, *, insecure: bool = False) -> None:
        self.target = target
        self.insecure = insecure
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        ssl_ctx: ssl.SSLContext | bool = not self.insecure
        connector = aiohttp.TCPConnector(limit=0, ssl=ssl_ctx, ttl_dns_cache=300, enable_cleanup_closed=False)
        self._session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,  # relay compressed replies as they are
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _request_headers(self, ex: Exchange, request: web.BaseRequest) -> Headers:
        # A plain list: aiohttp copies it into its own CIMultiDict, so building one here is wasted work.
        prior = next((v for k, v in ex.headers if k.lower() == "x-forwarded-for"), None)
        peer = request.remote or ""
        forwarded_for = ("X-Forwarded-For", f"{prior}, {peer}" if prior else peer)
        headers: Headers = []
        replaced = has_proto = has_host = False
        for k, v in _filter(ex.headers):
            lk = k.lower()
            if lk == "x-forwarded-for":  # replaced where it first appeared, as CIMultiDict would
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
            headers.append(("X-Forwarded-Proto", request.scheme))
        if not has_host:
            headers.append(("X-Forwarded-Host", request.host))
        return headers

    async def forward(
        self,
        ex: Exchange,
        request: web.BaseRequest,
        fallback: Callable[[Exchange, str], Awaitable[web.StreamResponse | None]] | None = None,
    ) -> web.StreamResponse:
        """Send ``ex`` to the app and relay the reply to ``request``; fills the reply side of ``ex``."""
        assert self._session is not None, "Forwarder.start() not called"
        url = ex.forward_url or self.target.url_for(ex.path, ex.query)
        ex.forward_url = url
        deadline = ex.deadline_s
        try:
            async with _timeout(deadline):
                resp = await self._session.request(
                    ex.method, url, headers=self._request_headers(ex, request), data=ex.body or None,
                    allow_redirects=False, compress=None, auto_decompress=False,
                )
                ex.first_byte = time.monotonic()
                if not _is_streaming(resp):
                    async with resp:
                        body = await resp.read()
                    return self._buffered(ex, resp, body)
        except asyncio.TimeoutError:
            return await self._fail(ex, request, fallback, 504, "timeout", self._timeout_text(ex))
        except aiohttp.ClientConnectorCertificateError as e:
            text = (f"TLS certificate of {self.target.netloc} rejected ({e.certificate_error}); "
                    "use --insecure for a self-signed certificate")
            return await self._fail(ex, request, fallback, 502, "tls", text)
        except aiohttp.ClientConnectorError as e:
            return await self._fail(ex, request, fallback, 502, "unreachable", self._unreachable_text(e))
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as e:
            text = f"{self.target.netloc} closed the connection without a complete reply ({e})"
            return await self._fail(ex, request, fallback, 502, "reset", text)
        except aiohttp.ClientResponseError as e:
            return await self._fail(ex, request, fallback, 502, "reset",
                                    f"{self.target.netloc} sent an invalid HTTP reply ({e.message})")
        return await self._stream(ex, request, resp)

    def _buffered(self, ex: Exchange, resp: aiohttp.ClientResponse, body: bytes) -> web.StreamResponse:
        ex.status = resp.status
        ex.response_headers = raw_headers(resp)
        ex.response_body = body[:CAPTURE_LIMIT]
        ex.response_truncated = len(body) > CAPTURE_LIMIT
        ex.response_bytes = len(body)
        return web.Response(status=resp.status, reason=resp.reason, body=body,
                            headers=_filter(ex.response_headers))

    async def _stream(self, ex: Exchange, request: web.BaseRequest,
                      resp: aiohttp.ClientResponse) -> web.StreamResponse:
        ex.streamed = True
        ex.status = resp.status
        ex.response_headers = raw_headers(resp)
        out = web.StreamResponse(status=resp.status, reason=resp.reason, headers=_filter(ex.response_headers))
        if resp.content_length is not None:
            out.content_length = resp.content_length
        captured = bytearray()
        try:
            async with resp:
                await out.prepare(request)
                async for chunk in resp.content.iter_any():
                    await out.write(chunk)
                    ex.response_bytes += len(chunk)
                    room = CAPTURE_LIMIT - len(captured)
                    if room > 0:
                        captured += chunk[:room]
                    if len(chunk) > room:
                        ex.response_truncated = True
                await out.write_eof()
        except (aiohttp.ClientError, ConnectionError, asyncio.TimeoutError) as e:
            ex.error_kind = "reset"
            ex.error = f"the reply stream broke after {ex.response_bytes} bytes ({type(e).__name__})"
        ex.response_body = bytes(captured)
        return out

    async def _fail(self, ex: Exchange, request: web.BaseRequest,
                    fallback: Callable[[Exchange, str], Awaitable[web.StreamResponse | None]] | None,
                    status: int, kind: str, text: str) -> web.StreamResponse:
        ex.error, ex.error_kind = text, kind
        if fallback is not None:
            alt = await fallback(ex, text)
            if alt is not None:
                return alt
        resp = json_error(status, "gateway timeout" if status == 504 else "bad gateway", text)
        ex.status = status
        ex.response_headers = list(resp.headers.items())
        ex.response_body = resp.body if isinstance(resp.body, bytes) else b""
        ex.response_bytes = len(ex.response_body)
        return resp

    def _timeout_text(self, ex: Exchange) -> str:
        what = ex.message_type or f"{ex.method} {ex.path}"
        return (f"{what}: your app did not reply within the {ex.deadline_s:g} s deadline "
                f"({self.target.netloc}); Vapi would have given up")

    def _unreachable_text(self, e: aiohttp.ClientConnectorError) -> str:
        where = f"{e.host}:{e.port}"
        if e.os_error.errno in (errno.ECONNREFUSED, None) or isinstance(e.os_error, ConnectionRefusedError):
            return f"nothing is listening on {where} — is your server running?"
        return f"cannot connect to {where} ({e.os_error.strerror or e.os_error}) — is your server running?"

