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
from dataclasses import dataclass

import httptools

from vapi_dev.config import bracket_host
from vapi_dev.exchange import Headers, header
from vapi_dev.proxy.flow import FlowControl
from vapi_dev.proxy.wire import NO_BODY_STATUSES, Reply, encode_head, json_error, reason_for

MAX_QUEUED = 16  # pipelined requests read ahead per connection before reading pauses
WRITE_HIGH = 1024 * 1024
MAX_HEAD = 64 * 1024  # request line and headers; more is refused with 431 (aiohttp allows about 8 KB a line)
LINGER_S = 2.0  # after a refusal (413, 408, 400), what the caller still sends is drained this long at most
HOLD_LIMIT = 4 * 1024 * 1024  # request bodies up to this are held whole (parsed, verified); longer ones stream
HELD_BUDGET = 64 * 1024 * 1024  # all held bodies together; past it, a body streams once it is over STREAM_HIGH
STREAM_HIGH = 256 * 1024  # streamed body bytes waiting for the app before reading from the caller pauses
OVERFLOW_WAIT_S = 1.0  # a connection over --max-connections gets its 503 after its first bytes, or this
NOTICE_EVERY_S = 10.0  # refused connections are told about at most this often


@dataclass(frozen=True)
class Limits:
    """What one caller may cost: sizes, counts and timeouts (``listen --help``, "Limits")."""

    max_body: int = 256 * 1024 * 1024
    max_connections: int = 512
    max_headers: int = 100
    head_timeout: float = 10.0  # the request line and headers, from the first byte (or the connection) on
    body_timeout: float = 30.0  # the longest a body may stop moving
    idle_timeout: float = 60.0  # a keep-alive connection between requests
    hold_limit: int = HOLD_LIMIT

    @property
    def sweep_s(self) -> float:
        return min(1.0, max(0.05, min(self.head_timeout, self.body_timeout, self.idle_timeout) / 4))


class _HeadTooLarge(Exception):
    pass


class _TooManyHeaders(Exception):
    pass


class BodyError(ConnectionError):
    """A streamed request body that will not be complete: ``status`` is what the caller is answered
    (408 it stopped sending, 413 over the limit, 400 it hung up) and ``text`` says why."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


class BodyStream:
    """The part of a request body past what the server holds, handed to the forwarder as it arrives.
    Reading from the caller pauses while STREAM_HIGH bytes wait, so a fast upload to a slow app stays small."""

    __slots__ = ("_buffered", "_chunks", "_conn", "_waiter", "done", "error", "received")

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self.done = False  # the caller has sent the whole body
        self.error: BodyError | None = None
        self.received = 0  # bytes fed through the stream (the held part not counted)

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        self.received += len(data)
        if self._buffered > STREAM_HIGH:
            self._conn.flow.pause_reading()
        self._wake()

    def finish(self) -> None:
        self.done = True
        self._wake()

    def fail(self, error: BodyError) -> None:
        if not self.done and self.error is None:
            self.error = error
            self._wake()

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        """The bytes that have arrived since the last read; b"" at the end (raises BodyError)."""
        while not self._chunks:
            if self.error is not None:
                raise self.error
            if self.done:
                return b""
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        self._conn.resume_body()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Request:
    """One request as read from the socket. ``body`` is complete unless ``stream`` is set: then it is the
    body's first part and the rest arrives through the stream. ``too_large`` is the limit in bytes its body
    went over (then it was refused and is answered 413), else 0."""

    __slots__ = (
        "body",
        "conn",
        "headers",
        "held",
        "host",
        "keep_alive",
        "method",
        "peer",
        "stream",
        "target",
        "too_large",
        "version",
    )

    def __init__(
        self,
        conn: Connection,
        method: str,
        target: str,
        version: str,
        headers: Headers,
        body: bytes,
        keep_alive: bool,
        too_large: int,
    ) -> None:
        self.conn = conn
        self.method = method
        self.target = target  # raw path and query, as sent
        self.version = version
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.too_large = too_large
        self.stream: BodyStream | None = None
        self.held = len(body)  # counted against the server's HELD_BUDGET until the request is done
        self.peer = conn.peer
        self.host = conn.local if (host := header(headers, "host")) is None else host

    @property
    def scheme(self) -> str:
        return "http"

    @property
    def declared_length(self) -> int | None:
        """The Content-Length the caller sent, when it sent one that is a number."""
        length = header(self.headers, "content-length")
        return int(length) if length is not None and length.strip().isdigit() else None


Handler = Callable[[Request], Awaitable[None]]


class Connection(asyncio.Protocol):
    """Parses requests off one socket and writes their replies, in order (pipelining is honoured)."""

    flow: FlowControl  # from connection_made on

    def __init__(self, server: InboundServer) -> None:
        self.server = server
        self.limits = server.limits
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
        self._served_any = False  # a first request has begun: between requests the idle timeout applies
        self._head_since: float | None = None  # a request head is arriving, since then
        self._body_since: float | None = None  # a request body is arriving; its last byte came then
        self._stream: BodyStream | None = None  # the body being streamed to the app
        self._upgrade_left = 0  # body bytes still to read of a request that asked to upgrade
        self._url_fed = False  # on_url was called in the current data_received
        self._overflow = False  # over --max-connections: answered 503 and closed
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
        self._held = 0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.flow = FlowControl(transport)
        server = self.server
        if len(server.connections) >= self.limits.max_connections:
            self._overflow = True
            server.overflow.add(self)
            asyncio.get_running_loop().call_later(OVERFLOW_WAIT_S, self._refuse_overflow)
            return
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.peer = str(peer[0]) if peer else ""
        if local:
            host = str(local[0])
            self.local = f"{bracket_host(host)}:{local[1]}"
        transport.set_write_buffer_limits(high=WRITE_HIGH)
        server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        server = self.server
        if self._overflow:
            server.overflow.discard(self)
            return
        self._release_held()
        server.connections.discard(self)
        if server.closing and not server.connections:
            server.all_gone.set()
        if self._stream is not None:
            self._stream.fail(BodyError(400, "the caller hung up before sending the whole body"))
        self.flow.wake_writer()  # a reply waiting for the caller to read learns it has gone
        if self.on_lost is not None:
            self.on_lost()

    def eof_received(self) -> bool | None:
        if self._stream is not None and not self._stream.done:
            self._stream.fail(BodyError(400, "the caller stopped sending before the end of the body"))
        return None  # the transport closes itself

    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        if self._overflow:
            self._refuse_overflow()
            return
        if self._upgrade_left:
            self._take_upgrade_body(data)
            return
        if self._broken:
            return  # a refused request's rest, drained until the connection closes
        self._url_fed = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as e:
            offset = int(e.args[0]) if e.args and isinstance(e.args[0], int) else len(data)
            if self._upgrade_left:
                # The request asked to upgrade (h2c, say) and has a body: llhttp hands the body over as the
                # new protocol's bytes. It is read here so the app gets it; the upgrade itself is not relayed.
                self._take_upgrade_body(data[offset:])
            elif not self._in_message and self._queue:
                # Upgrades are not relayed: the request is answered as plain HTTP/1.1 (RFC 9110 §7.8
                # lets a server ignore Upgrade), and the connection ends after it. CONNECT gets 405.
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
            elif isinstance(e.__context__, _TooManyHeaders):
                self._stop_parsing(
                    json_error(
                        431,
                        "request header fields too large",
                        f"vapi-dev accepts up to {self.limits.max_headers} header fields (--max-headers)",
                    )
                )
            else:
                self._stop_parsing(json_error(400, "bad request", f"vapi-dev could not parse the request ({e})"))
            return
        if self._in_message and not self._head_done and not self._headers and self._url:
            self._check_request_line(data)

    def _check_request_line(self, data: bytes) -> None:
        """A request line that ended without a version ("GET /") is HTTP/0.9, which llhttp accepts and then
        waits on for headers: answer 400 at once instead of at the head timeout."""
        if self.parser.get_http_version() != "0.0":
            return  # the line ended with a version (or llhttp already read one)
        # the line ends at the first newline after the URL (after it in this data, or anywhere in it when
        # the URL came in an earlier read)
        tail = data[data.rfind(self._url[-16:]) :] if self._url_fed else data
        if b"\n" in tail:
            self._stop_parsing(json_error(400, "bad request", "HTTP/0.9 requests are not supported"))

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._refused:
            self._in_message = True
            self._head_done = False
            self._served_any = True
            self._head_since = time.monotonic()
            self._reset_message()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            self._url += url
            self._url_fed = True
            if len(self._url) > MAX_HEAD:
                raise _HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._refused or self._head_done:
            return  # trailers of a chunked upload are not headers: they are dropped
        self._head_size += len(name) + len(value)
        if self._head_size > MAX_HEAD:
            raise _HeadTooLarge
        if len(self._headers) >= self.limits.max_headers:
            raise _TooManyHeaders
        self._headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._head_done = True
        self._head_since = None
        self._body_since = time.monotonic()
        length_text = header(self._headers, "content-length")
        length = int(length_text) if length_text is not None and length_text.strip().isdigit() else None
        if length is not None and length > self.limits.max_body:
            self._refuse_large(self.limits.max_body)
        elif self.parser.should_upgrade() and self.parser.get_method() != b"CONNECT" and length:
            if length > self.limits.hold_limit:
                self._refuse_large(self.limits.hold_limit)  # an upgrade's body is read whole, past llhttp
            else:
                self._upgrade_left = length
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
        self._body_since = time.monotonic()
        self._size += len(body)
        stream = self._stream
        if self._size > self.limits.max_body:
            if stream is not None:  # a chunked upload past the limit, already on its way to the app
                limit = self.limits.max_body // (1024 * 1024)
                stream.fail(BodyError(413, f"the body went over {limit} MB; vapi-dev stopped forwarding it"))
                self._stream = None
                self._stop_parsing(None)
                return
            self._refuse_large(self.limits.max_body)
            return
        if stream is not None:
            stream.feed(body)
            return
        self._body.append(body)
        self._held += len(body)
        server = self.server
        server.held += len(body)
        if self._held > self.limits.hold_limit or (server.held > HELD_BUDGET and self._held > STREAM_HIGH):
            self._start_stream()

    def on_message_complete(self) -> None:
        self._body_since = None
        if self._upgrade_left:
            return  # the body comes after the upgrade point; queued once it is read
        stream = self._stream
        if stream is not None:
            self._in_message = False
            self._stream = None
            stream.finish()
            return
        if not self._refused:
            self._queue_request()
            return
        # The refused upload has been read (and dropped) to its end: closing after the 413 now sends
        # FIN, not a reset that could overtake the 413 on its way to the caller.
        self._upload_done = True
        if not self.busy:
            self.close()

    def _start_stream(self) -> None:
        """The body is over what the server holds: the request goes to the app now, with what has
        arrived as the body's first part, and the rest follows through a BodyStream."""
        self._stream = BodyStream(self)
        self._queue_request(0, self._stream)

    def resume_body(self) -> None:
        """The forwarder took streamed bytes: read from the caller again (unless other reasons hold it)."""
        if self.flow.read_paused and not self._broken and len(self._queue) < MAX_QUEUED and not self.closed:
            self.flow.resume_reading()

    def _take_upgrade_body(self, data: bytes) -> None:
        self._body_since = time.monotonic()
        part = data[: self._upgrade_left]
        if part:
            self._body.append(part)
            self._held += len(part)
            self.server.held += len(part)
            self._upgrade_left -= len(part)
        if self._upgrade_left:
            return
        self._queue_request()
        self._queue[-1].keep_alive = False  # what follows would be the other protocol: the connection ends
        self._stop_parsing(None)

    def _refuse_large(self, limit: int) -> None:
        """Answer 413 as soon as the body is known to be too large; the rest of it is read and dropped."""
        self._refused = True
        self.server.held -= self._held
        self._held = 0
        self._body = []
        self._queue_request(limit)

    def _refuse_overflow(self) -> None:
        """Over --max-connections: 503 once the caller has said something (or after OVERFLOW_WAIT_S), so
        the answer is not lost to a reset, then close."""
        if self.closed or self.transport is None or self._broken:
            return
        self.server.refused_connection()
        reply = json_error(
            503,
            "service unavailable",
            f"vapi-dev is serving {self.limits.max_connections} connections (--max-connections); retry shortly",
        )
        reply.headers.append(("Retry-After", "1"))
        self._broken = True
        self._last_word = reply
        self._finish_broken()  # written as the last word of a broken connection, then the lingering close

    def check_timeouts(self, now: float) -> None:
        """Called by the server's sweep: 408 for a head or body that stopped coming, close when idle."""
        if self.closed or self._broken or self._overflow:
            return
        limits = self.limits
        if self._in_message and not self._head_done and self._head_since is not None:
            if self.flow.read_paused:  # vapi-dev stopped reading (pipelined requests wait): not the caller's fault
                self._head_since = now
            elif now - self._head_since > limits.head_timeout:
                self._stop_parsing(
                    json_error(
                        408,
                        "request timeout",
                        f"the request line and headers did not arrive within {limits.head_timeout:g} s",
                    )
                )
            return
        if self._body_since is not None or self._upgrade_left:
            since = self._body_since or now
            if self.flow.read_paused:  # waiting for the app to take the body is not the caller's fault
                self._body_since = now
            elif now - since > limits.body_timeout:
                self._body_timed_out()
            return
        if self.busy or self._in_message:
            return
        limit = limits.idle_timeout if self._served_any else limits.head_timeout
        if now - self.last_active > limit:
            self.close()

    def _body_timed_out(self) -> None:
        text = f"the request body stopped arriving for {self.limits.body_timeout:g} s"
        self._body_since = None
        self._upgrade_left = 0
        stream = self._stream
        if stream is not None:  # already on its way to the app: the forwarder answers the 408
            self._stream = None
            stream.fail(BodyError(408, text))
            self._stop_parsing(None)
        else:
            self._stop_parsing(json_error(408, "request timeout", text))

    def _release_held(self) -> None:
        """Give back to the server's HELD_BUDGET what this connection holds and will not serve: the body of
        the message being read, and the requests still queued (the one being served gives its own back)."""
        server = self.server
        server.held -= self._held
        self._held = 0
        if self.closed:
            for req in self._queue:
                server.held -= req.held
                req.held = 0

    def _stop_parsing(self, last_word: Reply | None) -> None:
        """The parser cannot go on: answer what is queued, then ``last_word`` (if any), then close."""
        self._release_held()  # the message being read is never queued now
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
        self._linger_close()

    def _linger_close(self) -> None:
        """Close after what was written, draining what the caller still sends for LINGER_S at most, so the
        last reply is not overtaken by a reset (the caller's unread bytes would cause one)."""
        transport = self.transport
        if transport is None or self.closed:
            return
        if transport.can_write_eof():
            try:
                transport.write_eof()
            except (OSError, RuntimeError):
                self.close()
                return
            self.flow.resume_reading()  # what arrives now is dropped (the connection is broken)
            asyncio.get_running_loop().call_later(LINGER_S, self.close)
        else:
            self.close()

    def _queue_request(self, too_large: int = 0, stream: BodyStream | None = None) -> None:
        if stream is None:
            self._in_message = False
        parser = self.parser
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        target = self._url.decode("latin-1")
        req = Request(
            self,
            parser.get_method().decode("ascii", "replace"),
            target,
            parser.get_http_version(),
            self._headers,
            body,
            parser.should_keep_alive() and not too_large,
            too_large,
        )
        req.stream = stream
        req.held = self._held
        self._held = 0
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
                finally:
                    self.server.held -= req.held
                    req.held = 0
                if req.stream is not None and not req.stream.done:
                    req.keep_alive = False  # answered before the whole body came: the rest cannot be parsed
                    self._stream = None
                    self._stop_parsing(None)
                if req.too_large:
                    # The 413 is out; the refused upload is drained (so closing sends FIN, not a reset
                    # that could overtake the 413), for LINGER_S at most.
                    if self._upload_done:
                        self.close()
                    else:
                        asyncio.get_running_loop().call_later(LINGER_S, self.close)
                    return
                if not req.keep_alive:
                    if self._broken:
                        return  # the finally clause lingers, then closes
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
        if req is not None and req.stream is not None and not req.stream.done:
            req.keep_alive = False  # the rest of the body will not be read
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


def raise_fd_limit() -> tuple[int, int] | None:
    """Raise the soft limit of open files to the hard limit where allowed; returns (soft, hard) after."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return None
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft == resource.RLIM_INFINITY or soft >= want:
            return soft, hard
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        return want, hard
    except (OSError, ValueError):
        return None


class InboundServer:
    """Listens on host:port and hands every complete request to ``handler``."""

    def __init__(
        self,
        handler: Handler,
        *,
        limits: Limits,
        on_error: Callable[[Exception], None],
        on_notice: Callable[[str], None] = lambda text: None,
    ) -> None:
        self.handler = handler
        self.limits = limits
        self.on_error = on_error
        self.on_notice = on_notice  # one warning sentence (connections refused, too few file descriptors)
        self.connections: set[Connection] = set()
        self.overflow: set[Connection] = set()  # over --max-connections, being answered 503
        self.held = 0  # bytes of request bodies held whole, all connections together
        self.closing = False
        self.all_gone = asyncio.Event()  # set when closing and the last connection has ended
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self._refused = 0  # connections answered 503 since the last notice
        self._refused_told = -NOTICE_EVERY_S

    @property
    def max_body(self) -> int:
        return self.limits.max_body

    async def start(self, host: str, port: int, backlog: int = 1024) -> int:
        loop = asyncio.get_running_loop()
        fds = raise_fd_limit()
        need = 2 * self.limits.max_connections + 64  # each caller's connection and one to the app
        if fds is not None and fds[0] < need:
            self.on_notice(
                f"this process may open only {fds[0]} files, fewer than --max-connections "
                f"{self.limits.max_connections} needs ({need}); lower --max-connections or raise `ulimit -n`"
            )
        if port == 0 and host:
            # A name with several addresses (localhost: 127.0.0.1 and ::1) would get a different free
            # port on each; listen on the first address only, so the one port reported is the port.
            infos = await loop.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
            if len({info[4][0] for info in infos}) > 1:
                host = str(infos[0][4][0])
        self._server = await loop.create_server(lambda: Connection(self), host, port, backlog=backlog)
        self._sweeper = loop.call_later(self.limits.sweep_s, self._sweep)
        sockets = list(self._server.sockets)
        return int(sockets[0].getsockname()[1]) if sockets else port

    def _sweep(self) -> None:
        now = time.monotonic()
        try:
            for conn in list(self.connections):
                conn.check_timeouts(now)
            if self._refused and now - self._refused_told >= NOTICE_EVERY_S:
                self._tell_refused(now)
        finally:  # one failure must not end every timeout
            self._sweeper = asyncio.get_running_loop().call_later(self.limits.sweep_s, self._sweep)

    def refused_connection(self) -> None:
        self._refused += 1
        now = time.monotonic()
        if now - self._refused_told >= NOTICE_EVERY_S:
            self._tell_refused(now)

    def _tell_refused(self, now: float) -> None:
        n, self._refused, self._refused_told = self._refused, 0, now
        what = "a connection" if n == 1 else f"{n} connections"
        self.on_notice(f"{what} answered 503: {self.limits.max_connections} were already open (--max-connections)")

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
        for conn in [*self.connections, *self.overflow]:
            conn.abort()  # a caller that stopped reading must not hold the shutdown
        if self._server is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
