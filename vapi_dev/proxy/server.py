"""The receiver's HTTP/1.1 server: one asyncio protocol per connection, parsed by httptools (llhttp),
requests answered in order, replies written straight to the socket.

Why not aiohttp's server here: the forward path is the product's hot loop, and aiohttp's request and
response objects cost more per exchange than everything else vapi-dev does (see scripts/bench).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable

import httptools

from vapi_dev.config import bracket_host
from vapi_dev.exchange import Headers, header
from vapi_dev.proxy.flow import FlowControl
from vapi_dev.proxy.wire import NO_BODY_STATUSES, Reply, encode_head, json_error, reason_for

IDLE_TIMEOUT_S = 75.0  # keep-alive connections idle this long are closed (aiohttp's default too)
SWEEP_S = 15.0
MAX_QUEUED = 16  # pipelined requests read ahead per connection before reading pauses
WRITE_HIGH = 1024 * 1024
MAX_HEAD = 64 * 1024  # request line and headers; more is refused with 431 (aiohttp allows about 8 KB a line)
LINGER_S = 2.0  # after a 413, the refused upload is drained this long at most before the connection closes


class _HeadTooLarge(Exception):
    pass


class Request:
    """One request as read from the socket. ``body`` is complete; ``too_large`` means it was refused."""

    __slots__ = ("body", "conn", "headers", "host", "keep_alive", "method", "peer", "target", "too_large", "version")

    def __init__(
        self,
        conn: Connection,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
        too_large: bool,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target  # raw path and query, as sent
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.too_large = too_large
        self.peer = conn.peer
        self.host = conn.local if (host := header(headers, "host")) is None else host

    @property
    def scheme(self) -> str:
        return "http"


Handler = Callable[[Request], Awaitable[None]]


class Connection(asyncio.Protocol):
    """Parses requests off one socket and writes their replies, in order (pipelining is honoured)."""

    flow: FlowControl  # from connection_made on

    def __init__(self, server: InboundServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.local = ""
        self.closed = False
        self.last_active = time.monotonic()
        self.on_lost: Callable[[], None] | None = None  # set while a reply is relayed: the caller hung up
        self._queue: collections.deque[Request] = collections.deque()
        self._worker: asyncio.Task[None] | None = None
        self._refused = False  # a body over the limit was refused: the connection ends after the 413
        self._upload_done = False
        self._broken = False  # nothing more can be parsed: serve what is queued, then close
        self._last_word: Reply | None = None  # the error reply that ends a broken connection
        self._in_message = False
        self._head_done = False
        self._reset_message()
        # the reply being written
        self._chunked = False
        self._head_only = False
        self.started = False  # the status line of the current reply has been written

    def _reset_message(self) -> None:
        self._url = b""
        self._head_size = 0
        self._headers: Headers = []
        self._body: list[bytes] = []
        self._size = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.flow = FlowControl(transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = str(peer[0]) if peer else ""
        if local:
            host = str(local[0])
            self.local = f"{bracket_host(host)}:{local[1]}"
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        if self.server.closing and not self.server.connections:
            self.server.all_gone.set()
        self.flow.wake_writer()  # a reply waiting for the caller to read learns it has gone
        if self.on_lost is not None:
            self.on_lost()

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self._broken:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if not self._in_message and self._queue:
                # Upgrades are not relayed: the request is answered as plain HTTP/1.1 (RFC 9110 §7.8
                # lets a server ignore Upgrade), and the connection ends after it.
                self._queue[-1].keep_alive = False
                self._stop_parsing(None)
            else:
                self._stop_parsing(json_error(501, "not implemented", "vapi-dev does not relay protocol upgrades"))
        except httptools.HttpParserError as e:
            if isinstance(e.__context__, _HeadTooLarge):
                self._stop_parsing(
                    json_error(
                        431,
                        "request header fields too large",
                        f"vapi-dev accepts up to {MAX_HEAD // 1024} KB of request line and headers",
                    )
                )
            else:
                self._stop_parsing(json_error(400, "bad request", f"vapi-dev could not parse the request ({e})"))

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._refused:
            self._in_message = True
            self._head_done = False
            self._reset_message()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._url += url
            if len(self._url) > MAX_HEAD:
                raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused or self._head_done:
            return  # trailers of a chunked upload are not headers: they are dropped
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._head_done = True
        length = header(self._headers, "content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.server.max_body:
            self._refuse_large()
        elif (
            self.transport is not None
            and not self.busy
            and self.parser.get_http_version() != "1.0"
            and any(k.lower() == "expect" and v.strip().lower() == "100-continue" for k, v in self._headers)
        ):
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._size += len(body)
        if self._size > self.server.max_body:
            self._refuse_large()
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            self._queue_request(False)
            return
        # The refused upload has been read (and dropped) to its end: closing after the 413 now sends
        # FIN, not a reset that could overtake the 413 on its way to the caller.
        self._upload_done = True
        if not self.busy:
            self.close()

    def _refuse_large(self) -> None:
        """Answer 413 as soon as the body is known to be too large; the rest of it is read and dropped."""
        self._refused = True
        self._body = []
        self._queue_request(True)

    def _stop_parsing(self, last_word: Reply | None) -> None:
        """The parser cannot go on: answer what is queued, then ``last_word`` (if any), then close."""
        self._broken = True
        self._last_word = last_word
        if self.transport is not None:
            self.flow.pause_reading()
        if not self.busy:
            self._finish_broken()

    def _finish_broken(self) -> None:
        reply, self._last_word = self._last_word, None
        if reply is not None and self.transport is not None and not self.closed:
            self._head_only = self._chunked = False
            self.transport.write(
                self._encode(None, reply.status, reply.reason, reply.headers, len(reply.body)) + reply.body
            )
        self.close()

    def _queue_request(self, too_large: bool) -> None:
        self._in_message = False
        parser = self.parser
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        req = Request(
            self,
            parser.get_method().decode("ascii", "replace"),
            self._url.decode("latin-1"),
            parser.get_http_version(),
            self._headers,
            body,
            parser.should_keep_alive() and not too_large,
            too_large,
        )
        self._queue.append(req)
        if len(self._queue) >= MAX_QUEUED and self.transport is not None:
            self.flow.pause_reading()
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._serve())

    # -- serving -------------------------------------------------------------------------------

    async def _serve(self) -> None:
        try:
            while self._queue and not self.closed:
                req = self._queue.popleft()
                self.started = False
                try:
                    await self.server.handler(req)
                except ConnectionError:  # the caller went away while its reply was being written
                    req.keep_alive = False
                except Exception as e:  # the handler failed; the caller still gets an answer
                    if not self.started and not self.closed:
                        self.send(req, json_error(500, "internal error", f"vapi-dev failed: {e!r}"))
                    else:
                        req.keep_alive = False
                    self.server.on_error(e)
                if req.too_large:
                    # The 413 is out; the refused upload is drained (so closing sends FIN, not a reset
                    # that could overtake the 413), for LINGER_S at most.
                    if self._upload_done:
                        self.close()
                    else:
                        asyncio.get_running_loop().call_later(LINGER_S, self.close)
                    return
                if not req.keep_alive:
                    self.close()
                    return
                flow = self.flow
                if flow.write_paused and self._queue:
                    try:  # a caller that pipelines without reading gets no more replies buffered for it
                        await self._drained()
                    except ConnectionError:
                        return
                if flow.read_paused and not self._broken and len(self._queue) < MAX_QUEUED // 2:
                    flow.resume_reading()
        finally:
            self._worker = None
            self.last_active = time.monotonic()
            if self._broken and not self._queue:
                self._finish_broken()
            elif self.server.closing and not self._queue:
                self.close()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def abort(self) -> None:
        """Close at once, dropping unsent bytes (a caller that stopped reading must not hold shutdown)."""
        if self.transport is not None:
            self.closed = True
            self.transport.abort()

    @property
    def busy(self) -> bool:
        return self._worker is not None or bool(self._queue)

    # -- writing a reply -----------------------------------------------------------------------

    def _encode(
        self, req: Request | None, status: int, reason: str | None, headers: Headers, length: int | None
    ) -> bytes:
        """The head of a reply. ``reason`` None is vapi-dev's own reply; a relayed one may be empty."""
        extra = ""
        if status in NO_BODY_STATUSES or 100 <= status < 200:
            pass  # never a body, so no framing header
        elif length is not None:
            extra = f"Content-Length: {length}\r\n"
        elif self._chunked:
            extra = "Transfer-Encoding: chunked\r\n"
        if req is None or not req.keep_alive or self.server.closing:
            if req is not None:
                req.keep_alive = False  # said here, so done after this reply
            extra += "Connection: close\r\n"
        elif req.version == "1.0":
            extra += "Connection: keep-alive\r\n"  # HTTP/1.0 persists only when told so
        phrase = reason_for(status) if reason is None else reason
        return encode_head(f"HTTP/1.1 {status} {phrase}", headers, extra)

    def send(self, req: Request, reply: Reply) -> None:
        """Write a whole reply at once."""
        self.send_whole(req, reply.status, reply.reason, reply.headers, reply.body)

    def send_whole(
        self, req: Request, status: int, reason: str | None, headers: Headers, body: bytes, length: int | None = None
    ) -> None:
        """Write status, headers and the complete body in one write. ``length`` is kept for HEAD."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("the caller closed the connection")
        self.started = True
        head_only = req.method == "HEAD" or status in NO_BODY_STATUSES
        self._head_only, self._chunked = head_only, False
        size = length if head_only else len(body)  # a HEAD reply states the length a GET would have
        head = self._encode(req, status, reason, headers, size)
        self.transport.write(head if head_only else head + body)

    def start(self, req: Request, status: int, reason: str, headers: Headers, length: int | None) -> None:
        """Begin a streamed reply: chunked when the length is unknown (or close-delimited for HTTP/1.0)."""
        if self.closed or self.transport is None:
            raise ConnectionResetError("the caller closed the connection")
        self.started = True
        self._head_only = req.method == "HEAD" or status in NO_BODY_STATUSES
        self._chunked = length is None and not self._head_only and req.version != "1.0"
        if length is None and not self._head_only and not self._chunked:
            req.keep_alive = False  # HTTP/1.0: the end of the body is the end of the connection
        self.transport.write(self._encode(req, status, reason, headers, length))

    async def write(self, chunk: bytes) -> None:
        if self.closed or self.transport is None:
            raise ConnectionResetError("the caller closed the connection")
        if not chunk or self._head_only:
            return
        if self._chunked:
            self.transport.writelines((f"{len(chunk):x}\r\n".encode(), chunk, b"\r\n"))
        else:
            self.transport.write(chunk)
        if self.flow.write_paused:
            await self._drained()

    async def _drained(self) -> None:
        """While writing is paused: until the caller has taken what is buffered for it (raises
        ConnectionResetError if it left)."""
        if self.closed:
            raise ConnectionResetError("the caller closed the connection")
        await self.flow.drain()
        if self.flow.write_paused:  # woken by connection_lost, not by the buffer draining
            raise ConnectionResetError("the caller closed the connection")

    def end(self) -> None:
        if self._chunked and not self.closed and self.transport is not None:
            self.transport.write(b"0\r\n\r\n")
        self._chunked = False


class InboundServer:
    """Listens on host:port and hands every complete request to ``handler``."""

    def __init__(self, handler: Handler, *, max_body: int, on_error: Callable[[Exception], None]) -> None:
        self.handler = handler
        self.max_body = max_body
        self.on_error = on_error
        self.connections: set[Connection] = set()
        self.closing = False
        self.all_gone = asyncio.Event()  # set when closing and the last connection has ended
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self, host: str, port: int, backlog: int = 1024) -> int:
        loop = asyncio.get_running_loop()
        if port == 0 and host:
            # A name with several addresses (localhost: 127.0.0.1 and ::1) would get a different free
            # port on each; listen on the first address only, so the one port reported is the port.
            infos = await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            if len({info[4][0] for info in infos}) > 1:
                host = str(infos[0][4][0])
        self._server = await loop.create_server(lambda: Connection(self), host, port, backlog=backlog)
        self._sweeper = loop.call_later(SWEEP_S, self._sweep)
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1]) if sockets else port

    def _sweep(self) -> None:
        now = time.monotonic()
        for conn in list(self.connections):
            if not conn.busy and now - conn.last_active > IDLE_TIMEOUT_S:
                conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(SWEEP_S, self._sweep)

    def stop_accepting(self) -> None:
        self.closing = True
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if not conn.busy:
                conn.close()
        if not self.connections:
            self.all_gone.set()

    async def close(self, grace: float = 0.0) -> None:
        """Let connections finish what they are sending (``grace`` seconds at most), then abort the rest."""
        self.stop_accepting()
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self.connections and grace > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.all_gone.wait(), grace)
        for conn in list(self.connections):
            conn.abort()  # a caller that stopped reading must not hold the shutdown
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
