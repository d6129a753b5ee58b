"""The forwarder's HTTP/1.1 client to the developer's app: a keep-alive pool of asyncio protocols
parsed by httptools, no redirects, no decompression, replies handed over as they arrive."""

from __future__ import annotations

import asyncio
import collections
import errno
import select
import socket
import ssl
import time
from typing import Protocol

import httptools

from vapi_dev.config import Target, bracket_host
from vapi_dev.exchange import Headers
from vapi_dev.proxy.flow import FlowControl
from vapi_dev.proxy.wire import NO_BODY_STATUSES


class BodySource(Protocol):
    """The rest of a request body, as it arrives (the server's BodyStream)."""

    async def read(self) -> bytes:
        """The next bytes; b"" at the end."""
        ...


POOL_IDLE_S = 4.0  # below Node's 5 s keep-alive timeout, so a pooled connection is rarely closed under us
READ_HIGH = 1024 * 1024  # reply bytes buffered before reading from the app pauses
WRITE_SLICE = 1024 * 1024
MAX_REPLY_HEAD = 256 * 1024  # status line and headers of a reply; more is an invalid reply (502)
APP_CLOSES = 3  # the app closing this many kept-alive connections itself...
APP_CLOSES_WINDOW_S = 10.0  # ...within this long...
NO_REUSE_S = 30.0  # ...means connections to it are not reused for this long (each request gets a fresh one)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


def _settle(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


class UpstreamError(Exception):
    """The app could not be reached or did not answer properly. ``kind`` is an Exchange.error_kind."""

    def __init__(
        self, kind: str, text: str, *, stale: bool = False, unsent: bool = False, unread: bool = False
    ) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text
        self.stale = stale  # a reused connection failed before any reply byte: an idempotent request may retry
        self.unsent = unsent  # nothing of the request can have reached the app: any request may retry
        self.unread = unread  # the app reset a reused connection before any reply byte (likely unread)


class _BadReply(Exception):
    """Raised from a parser callback: the reply cannot be relayed (the text says why)."""


class _Misbehaved(_BadReply):
    """Raised from a parser callback: a well-formed reply that is still not one to relay (the text is whole)."""


def _readable(fd: int) -> bool:
    """Whether the kernel holds something for ``fd`` that the event loop has not read yet: bytes, an end or
    a reset. On a connection resting in the pool, any of them means it cannot carry another request."""
    if fd < 0:
        return False
    if _poll is None:  # Windows: select() takes any socket there
        return bool(select.select([fd], [], [], 0)[0])
    poller = _poll()  # not select(): descriptors above FD_SETSIZE are common once the fd limit is raised
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


_poll = getattr(select, "poll", None)


class UpstreamConnection(asyncio.Protocol):
    """One connection to the app; carries one exchange at a time."""

    flow: FlowControl  # from connection_made on

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.head_only = False
        self.cut = False  # the request body was not sent whole: the connection cannot carry another
        self.closed_by_us = False
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.reason = b""
        self.head_size = 0
        self.headers: Headers = []
        self.framed = False  # Content-Length or chunked: the reply ends without the connection ending
        self.content_length: int | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.complete = False
        self.keep_alive = False  # read when the reply is complete: llhttp forgets it for the next one
        self.after_end = False  # the parser began another message after the whole reply
        self.error: UpstreamError | None = None
        self.got_bytes = False
        self._head: asyncio.Future[None] | None = None
        self._data: asyncio.Future[None] | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.flow = FlowControl(transport)
        sock = transport.get_extra_info("socket")
        self.fd = sock.fileno() if sock is not None else -1

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.complete:
            # Bytes after the whole reply (resting in the pool, or not handed back yet): the app and we no
            # longer agree where its replies begin, so this connection carries no other request.
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except Exception as e:  # httptools.HttpParserError, HttpParserUpgrade: nothing to relay
            why = e.__context__ if isinstance(e.__context__, _BadReply) else e
            if isinstance(why, _Misbehaved):
                self._fail(UpstreamError("reset", str(why)))
            elif not self.complete:
                self._fail(UpstreamError("reset", f"{self.pool.target.netloc} sent an invalid HTTP reply ({why})"))
            # else: bytes that are no reply after a whole one; the reply stands (as nginx has it)
            self.close()
            return
        if self.after_end:
            self.close()  # the start of a second reply; one whole in this read is refused in on_headers_complete

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.discard(self)
        self.flow.wake_writer()  # send() sees the connection closed and waits for the verdict
        if self.complete:
            return
        if self.status and not self.framed and exc is None and not self.closed_by_us:
            self.complete = True  # the reply's body ended with the connection, as its headers said
            self._wake()
            return
        netloc = self.pool.target.netloc
        if not self.status:
            stale = self.reused and not self.got_bytes
            # A reset (not a close) of a reused connection before any reply byte: the app closed it with our
            # request unread in its buffer (an idle close racing our send). The app never saw the request.
            unread = stale and isinstance(exc, ConnectionResetError)
            err = UpstreamError("reset", f"{netloc} closed the connection without a reply", stale=stale, unread=unread)
        else:
            how = "reset the connection" if exc is not None else "closed the connection"
            err = UpstreamError("reset", f"{netloc} {how} in the middle of the reply")
        self._fail(err)

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            self.after_end = True

    def on_status(self, reason: bytes) -> None:
        self.reason += reason
        if len(self.reason) > MAX_REPLY_HEAD:
            raise _BadReply("status line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self.status:  # after the final head come only trailers, which are not relayed
            self.head_size += len(name) + len(value)
            if self.head_size > MAX_REPLY_HEAD:
                raise _BadReply(f"headers over {MAX_REPLY_HEAD // 1024} KB")
            self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        netloc = self.pool.target.netloc
        if self.after_end:  # caught before the first is relayed: neither is (send() and read_all() see to it)
            raise _Misbehaved(f"the app at {netloc} sent two replies to one request")
        status = self.parser.get_status_code()
        if not 100 <= status <= 599:
            raise _BadReply(f"status {status:03d}")
        if status == 101:  # Upgrade is hop-by-hop and never forwarded: no request asked for this
            raise _Misbehaved(
                f"the app at {netloc} answered 101 Switching Protocols to a request that asked for no upgrade"
            )
        if 100 <= status < 200:
            self.headers, self.reason, self.head_size = [], b"", 0  # an interim reply: the real one follows
            return
        self.status = status
        for k, v in self.headers:
            lk = k.lower()
            if lk == "content-length":
                self.framed = True
                if v.strip().isdigit():
                    self.content_length = int(v)
            elif lk == "transfer-encoding" and "chunked" in v.lower():
                self.framed = True
        if self.head_only or status in NO_BODY_STATUSES:
            self.framed = True
            self.complete = True  # no body follows, whatever the headers say
        head, self._head = self._head, None
        if head is not None and not head.done():
            head.set_result(None)

    def on_body(self, body: bytes) -> None:
        if self.complete:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > READ_HIGH:
            self.flow.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self.status:
            return  # the end of an interim reply
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True
        self._wake()
        self.flow.wake_writer()  # a whole answer before the whole upload: send() stops sending

    # -- helpers -------------------------------------------------------------------------------

    def _wake(self) -> None:
        data, self._data = self._data, None
        _settle(data)

    def _fail(self, err: UpstreamError) -> None:
        if self.error is None:
            self.error = err  # the first cause is the one told
        err = self.error
        for fut in (self._head, self._data):
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self._head = self._data = None

    def close(self) -> None:
        self.closed = True
        self.closed_by_us = True
        if self.transport is not None:
            if self.complete:
                self.transport.close()
            else:
                self.transport.abort()  # nothing to flush that the app still wants

    def cancel(self, reason: str) -> None:
        """Give up on this exchange (the caller went away): wake whoever waits, drop the connection."""
        self._fail(UpstreamError("reset", reason))
        self.close()

    # -- the exchange --------------------------------------------------------------------------

    async def send(self, head: bytes, body: bytes, head_only: bool, rest: BodySource | None = None) -> None:
        """Write the request and wait for the reply's status line and headers. ``rest`` is the part of the
        body still arriving from the caller (sent chunked when the head says Transfer-Encoding: chunked)."""
        transport = self.transport
        assert transport is not None
        self._begin()
        flow = self.flow  # it mirrors the transport: a reused one may still be paused for writing, and waits
        self.head_only = head_only
        self.cut = False
        if self.closed or transport.is_closing():
            raise self._unsent()
        loop = asyncio.get_running_loop()
        head_ready = self._head = loop.create_future()
        try:
            transport.write(head + body if body and len(body) <= WRITE_SLICE else head)
            if transport.is_closing():
                raise self._unsent()  # that first write failed: no byte of the request left
            if len(body) > WRITE_SLICE:
                view = memoryview(body)
                for i in range(0, len(body), WRITE_SLICE):
                    if self.closed or self.complete:
                        # The app hung up, or gave its whole answer (413, say) before taking the whole
                        # body: stop sending (RFC 9112 §9.5). An early head alone is not a reason to.
                        self.cut = True
                        break
                    transport.write(view[i : i + WRITE_SLICE])
                    if flow.write_paused and not self.closed:
                        await flow.drain()
            if rest is not None:
                await self._send_rest(head, rest)
            await head_ready
            if self.error is not None:
                raise self.error  # the reply's head came, then something that makes it no reply to relay
        except BaseException:
            if not head_ready.done():
                head_ready.cancel()  # nobody will wait for it any more
            self._head = None
            raise

    def _unsent(self) -> UpstreamError:
        netloc = self.pool.target.netloc
        return UpstreamError("reset", f"{netloc} closed the connection before the request was sent", unsent=True)

    async def _send_rest(self, head: bytes, rest: BodySource) -> None:
        """Relay a streamed request body as it arrives (raises BodyError when the caller stops sending).
        The head says how it is framed: chunked (the held part was sent as a first chunk), or a length."""
        assert self.transport is not None
        chunked = b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
        transport, flow = self.transport, self.flow
        while True:
            chunk = await rest.read()
            if self.closed or self.complete:
                self.cut = True  # the app hung up or answered already: the rest is not sent
                return
            if not chunk:
                if chunked:
                    transport.write(b"0\r\n\r\n")
                return
            if chunked:
                transport.writelines((f"{len(chunk):x}\r\n".encode(), chunk, b"\r\n"))
            else:
                transport.write(chunk)
            if flow.write_paused and not self.closed:
                await flow.drain()

    def take(self) -> bytes:
        """The reply bytes that have arrived and not been taken yet."""
        chunks, self.chunks = self.chunks, []
        self.buffered = 0
        if self.flow.read_paused and not self.closed:
            self.flow.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    async def wait(self) -> None:
        """Until more reply bytes arrive or the reply is complete (raises UpstreamError if it breaks)."""
        if self.chunks or self.complete:
            return
        if self.error is not None:
            raise self.error
        self._data = asyncio.get_running_loop().create_future()
        await self._data

    async def read_all(self) -> bytes:
        parts: list[bytes] = []
        while not self.complete:
            if self.chunks:
                parts.append(self.take())  # also lets reading resume when it was paused
            await self.wait()
        if self.chunks:
            parts.append(self.take())
        if self.error is not None:
            raise self.error  # a second reply came with the end of this one: neither is relayed
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not (self.closed or self.head_only or self.cut)


class Pool:
    """Keep-alive connections to one target; a connection is checked out for one exchange at a time."""

    def __init__(self, target: Target, ssl_context: ssl.SSLContext | None) -> None:
        self.target = target
        self.ssl = ssl_context
        self._idle: collections.deque[UpstreamConnection] = collections.deque()  # oldest first
        self._all: set[UpstreamConnection] = set()
        self._app_closes: collections.deque[float] = collections.deque(maxlen=APP_CLOSES)
        self._no_reuse_until = 0.0

    async def acquire(self, *, fresh: bool = False) -> UpstreamConnection:
        """A pooled connection still open (unless ``fresh``), else a new one."""
        self._prune(time.monotonic())
        while self._idle and not fresh:
            conn = self._idle.pop()  # the most recently used: the least likely to be closed by the app
            # The app may have closed it, or written to it, an instant ago, before the loop could read it:
            # the kernel knows already. (Without this, an app that closes after each reply without saying
            # Connection: close turned up to one POST in eight into a 502: scripts/stale_pool.py.)
            assert conn.transport is not None
            if conn.closed or conn.transport.is_closing() or _readable(conn.fd):
                conn.close()
                self._app_closed()
                continue
            conn.reused = True
            return conn
        return await self._connect()

    def _prune(self, now: float) -> None:
        """Close idle connections older than POOL_IDLE_S (the oldest are at the left)."""
        idle = self._idle
        while idle and (idle[0].closed or now - idle[0].idle_since >= POOL_IDLE_S):
            idle.popleft().close()

    async def _connect(self) -> UpstreamConnection:
        loop = asyncio.get_running_loop()
        t = self.target
        try:
            _, conn = await loop.create_connection(
                lambda: UpstreamConnection(self),
                t.host,
                t.port,
                ssl=self.ssl,
                server_hostname=t.host if self.ssl is not None else None,
            )
        except ssl.SSLCertVerificationError as e:
            raise UpstreamError(
                "tls",
                f"TLS certificate of {t.netloc} rejected ({e.verify_message or e}); "
                "use --insecure for a self-signed certificate",
            ) from None
        except ssl.SSLError as e:
            raise UpstreamError("tls", f"TLS with {t.netloc} failed ({e.reason or e})") from None
        except socket.gaierror as e:
            raise UpstreamError(
                "unreachable", f"cannot connect to {self._where()} ({e.strerror or e}) — is your server running?"
            ) from None
        except OSError as e:
            raise UpstreamError("unreachable", self._unreachable_text(e)) from None
        self._all.add(conn)
        return conn

    def _where(self) -> str:
        host = self.target.host
        return f"{bracket_host(host)}:{self.target.port}"

    def _unreachable_text(self, e: OSError) -> str:
        refused = (
            isinstance(e, ConnectionRefusedError)
            or e.errno == errno.ECONNREFUSED
            or (e.errno is None and "Connect call failed" in str(e))
        )
        if refused:
            return f"nothing is listening on {self._where()} — is your server running?"
        return f"cannot connect to {self._where()} ({e.strerror or e}) — is your server running?"

    def _app_closed(self) -> None:
        """The app closed a kept-alive connection on its own. An app that does so after every reply
        (without saying Connection: close) races each reuse; after APP_CLOSES such closes within
        APP_CLOSES_WINDOW_S, connections are not kept for NO_REUSE_S."""
        now = time.monotonic()
        closes = self._app_closes
        closes.append(now)
        if len(closes) == APP_CLOSES and now - closes[0] <= APP_CLOSES_WINDOW_S:
            self._no_reuse_until = now + NO_REUSE_S
            closes.clear()

    def release(self, conn: UpstreamConnection) -> None:
        if conn.reusable() and time.monotonic() >= self._no_reuse_until:
            conn.flow.resume_reading()  # so that the loop sees what the app sends or whether it hangs up
            conn.idle_since = now = time.monotonic()
            self._idle.append(conn)
            self._prune(now)
        else:
            conn.close()

    def discard(self, conn: UpstreamConnection) -> None:
        self._all.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)
            if not conn.closed_by_us:
                self._app_closed()
        elif conn.reused and not conn.got_bytes and not conn.closed_by_us:
            self._app_closed()  # it closed the connection as the request went out

    def close(self) -> None:
        for conn in list(self._all):
            conn.cancel("vapi-dev stopped before the app replied")  # so the record does not blame the app
        self._idle.clear()
        self._all.clear()
