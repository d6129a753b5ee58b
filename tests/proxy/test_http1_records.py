"""The forward path's exchange record on unusual paths, shutdown, the pool, and malformed or unusual
replies from the app (each of these once went wrong)."""

from __future__ import annotations

import asyncio
import socket
import struct

import aiohttp
import pytest

from tests.support.listener import Listener, running_listener
from tests.support.raw_http import connect, raw_app, read_request, read_response
from vapi_dev.exchange import Exchange, Pending


def _rst_close(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a crashing process or a killed pod does."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def post_and_record(lst: Listener) -> tuple[int, Exchange]:
    """POST {} over a raw socket: the status the caller got and the exchange vapi-dev recorded."""
    reader, writer = await connect(lst)
    writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    try:
        status, _, _ = await asyncio.wait_for(read_response(reader), 3)
    finally:
        writer.close()
    return status, (await lst.sink.wait_finished(1, timeout=2))[0]


async def test_close_delimited_reply_cut_by_a_reset_is_not_relayed_as_complete() -> None:
    """A reply framed by the connection's end (no Content-Length, not chunked) that ends with a TCP
    reset, not a FIN, was cut: the caller must not get a well-terminated chunked reply, and the
    record must say the stream broke."""
    relayed = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\npartial")
        await writer.drain()
        await asyncio.wait_for(relayed.wait(), 2)
        _rst_close(writer)  # the app crashes mid-reply

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)).decode("latin-1").lower()
        assert "transfer-encoding: chunked" in head
        first = await asyncio.wait_for(reader.readuntil(b"partial\r\n"), 2)
        assert first.endswith(b"partial\r\n")
        relayed.set()
        rest = await asyncio.wait_for(reader.read(100), 2)  # b"" when the listener closes
        writer.close()
        ex = (await lst.sink.wait_finished(1, timeout=2))[0]
    assert rest != b"0\r\n\r\n", "a cut reply was terminated as if it were whole"
    assert ex.error_kind == "reset" and ex.error is not None


async def test_app_status_000_is_a_bad_gateway_not_a_timeout() -> None:
    """llhttp accepts a status code of 000; such a reply never 'completes' (status 0 is taken for an
    interim reply), so the caller waits for the whole deadline and the record blames a timeout."""

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 000 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base, timeout=1.0) as lst:
        status, ex = await post_and_record(lst)
    assert status == 502 and ex.error_kind != "timeout"


async def test_app_status_below_100_is_not_relayed() -> None:
    """A status code under 100 (llhttp accepts 3 digits such as 099) is not HTTP: relaying it sends
    the caller an invalid status line."""

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        try:
            status, _, _ = await asyncio.wait_for(read_response(reader), 1.5)
        finally:
            writer.close()
    assert status == 502


async def test_shutdown_does_not_cut_a_reply_that_is_still_being_delivered() -> None:
    """stop(grace) waits for the exchange, but the relay ends as soon as the last bytes are handed to
    the transport (up to WRITE_HIGH of them still in its buffer); InboundServer.close() then aborts
    the connection at once, so a slow caller gets a reset and a cut reply although the grace had
    plenty left."""
    payload = b"r" * (8 * 1024 * 1024)  # a Content-Length over 1 MB: streamed
    go = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.wait_for(go.wait(), 2)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: audio/wav\r\nContent-Length: %d\r\n\r\n" % len(payload) + payload
        )
        await writer.drain()
        await reader.read()

    loop = asyncio.get_running_loop()
    async with raw_app(app) as (base, _), running_listener(base) as lst:
        host, port = lst.url.removeprefix("http://").rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a slow link
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, int(port)))
        await loop.sock_sendall(sock, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        receiver = lst.session.receiver
        for _ in range(100):
            if receiver.in_flight:
                break
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(receiver.stop(5.0))
        await asyncio.sleep(0.05)
        go.set()
        got = bytearray()
        try:
            while True:  # about 13 MB/s
                data = await asyncio.wait_for(loop.sock_recv(sock, 64 * 1024), 2)
                if not data:
                    break
                got += data
                await asyncio.sleep(0.005)
        except ConnectionError:
            pass
        finally:
            sock.close()
        await asyncio.wait_for(stopping, 3)
    head_end = got.find(b"\r\n\r\n") + 4
    assert got.startswith(b"HTTP/1.1 200")
    assert len(got) - head_end == len(payload), f"the caller got {len(got) - head_end} of {len(payload)} bytes"


async def test_stop_waits_for_a_pipelined_exchange_that_starts_as_the_previous_one_ends() -> None:
    """A streamed reply (its head said keep-alive before stop() began) ends; the connection's worker
    goes straight on to the next pipelined request in the same loop turn, so in_flight goes 1 -> 0 ->
    1 and _idle is set then cleared. stop() was woken by the set and aborts the connection while the
    second exchange is at the app, well inside the grace."""
    end_stream = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n"
        )
        await writer.drain()
        await asyncio.wait_for(end_stream.wait(), 2)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await read_request(reader)
        await asyncio.sleep(0.3)  # the second request takes a moment
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
        await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            b"POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        )
        await asyncio.wait_for(reader.readuntil(b"first\r\n"), 2)
        stopping = asyncio.create_task(lst.session.receiver.stop(2.0))
        await asyncio.sleep(0.05)
        end_stream.set()
        first = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 2)
        try:
            second = await asyncio.wait_for(read_response(reader), 2)
        except (ConnectionError, asyncio.IncompleteReadError):
            second = (0, {}, b"")
        await asyncio.wait_for(stopping, 3)
        writer.close()
    assert first.endswith(b"0\r\n\r\n")
    assert (second[0], second[2]) == (200, b"second")


async def test_idle_app_connections_are_not_kept_past_the_pool_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a burst, the pool holds one idle connection per concurrent request. It is a LIFO stack
    and only the top is looked at, so with steady traffic the older ones are never checked, never
    closed and never reused: they stay open to the app (one that has no idle timeout, Go's default)
    long past POOL_IDLE_S."""
    monkeypatch.setattr("vapi_dev.proxy.client.POOL_IDLE_S", 0.3)
    open_now: set[int] = set()
    burst = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        open_now.add(id(writer))
        try:
            while True:
                await read_request(reader)
                if not burst.is_set():
                    await asyncio.sleep(0.1)  # the burst's requests overlap
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        finally:
            open_now.discard(id(writer))

    async with raw_app(app) as (base, connections), running_listener(base) as lst:
        async with aiohttp.ClientSession() as client:

            async def one() -> None:
                async with client.post(lst.url + "/x", data=b"{}") as r:
                    assert await r.read() == b"ok"

            await asyncio.wait_for(asyncio.gather(*(one() for _ in range(5))), 2)
            burst.set()
            assert len(connections) == 5
            for _ in range(8):  # steady traffic, one request every 0.1 s, for twice POOL_IDLE_S
                await asyncio.wait_for(one(), 2)
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.05)
            still_open = len(open_now)
    assert still_open <= 1, f"{still_open} app connections idle far past POOL_IDLE_S are still open"


async def test_app_sending_an_endless_header_block_is_cut_off() -> None:
    """Reply heads from the app have no size limit (requests are held to 64 KB): an app stuck writing
    headers is buffered into memory without bound until the deadline, then reported as slow."""
    sent = 0

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n")
        line = b"X-Pad: " + b"a" * 8185 + b"\r\n"  # 8 KB a line
        while sent < 64 * 1024 * 1024:  # raw_app ends quietly when vapi-dev hangs up
            writer.write(line * 8)
            sent += len(line) * 8
            await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base, timeout=1.0) as lst:
        status, ex = await post_and_record(lst)
    assert (status, ex.error_kind) == (502, "reset"), (
        f"{status} {ex.error_kind}, after the app sent {sent >> 20} MB of headers"
    )


async def test_pipelining_caller_that_does_not_read_does_not_grow_the_write_buffer_without_bound() -> None:
    """Whole replies are written without waiting for the caller to take them, and the connection's
    worker goes straight on to the next pipelined request, so a caller (the listener is public
    through the tunnel) that pipelines requests and never reads makes vapi-dev hold every reply in
    memory. Streamed replies wait for the drain; whole ones (up to 1 MB each) should too."""
    reply = b"w" * (512 * 1024)
    served = 0

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            await read_request(reader)
            served += 1
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(reply) + reply
            )
            await writer.drain()

    loop = asyncio.get_running_loop()
    async with raw_app(app) as (base, _), running_listener(base) as lst:
        host, port = lst.url.removeprefix("http://").rsplit(":", 1)
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        await loop.sock_connect(sock, (host, int(port)))
        request = b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n"
        await asyncio.wait_for(loop.sock_sendall(sock, request * 64), 2)  # and never read
        await asyncio.sleep(0.8)
        server = lst.session.receiver._server
        assert server is not None
        buffered = max((c.transport.get_write_buffer_size() for c in server.connections if c.transport), default=0)
        sock.close()
    assert buffered <= 4 * 1024 * 1024, (
        f"{buffered >> 20} MB of replies held for a caller that does not read ({served} requests forwarded)"
    )


TOOL_CALL = (
    b'{"message":{"type":"tool-calls","call":{"id":"call_1"},"toolCallList":'
    b'[{"id":"tc1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}}'
)


async def test_a_reply_needed_exchange_waiting_through_the_stop_grace_is_still_announced() -> None:
    """stop() cancels the pending sweeper at once, then lets in-flight exchanges finish for up to
    the grace: a tool call that waits for the app through the grace is never announced as pending."""
    release = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.wait_for(release.wait(), 3)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{"results":[]}')
        await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"POST /tool HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % len(TOOL_CALL)
            + TOOL_CALL
        )
        receiver = lst.session.receiver
        for _ in range(100):
            if receiver.in_flight:
                break
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(receiver.stop(3.0))  # Ctrl-C: "letting in-flight requests finish"
        await asyncio.sleep(1.3)  # the tool call has now waited longer than PENDING_AFTER_S
        announced = [e for e in lst.sink.events if isinstance(e, Pending)]
        release.set()
        await asyncio.wait_for(read_response(reader), 2)
        await asyncio.wait_for(stopping, 3)
        writer.close()
    assert announced, "no 'still waiting' event for a tool call that waited 1.3 s during the stop grace"


async def test_exchange_cut_by_shutdown_does_not_blame_the_app(monkeypatch: pytest.MonkeyPatch) -> None:
    """An exchange still waiting for the app when the stop grace runs out is ended by vapi-dev
    closing the pool; connection_lost takes that for the app hanging up, so the record (and the
    journal) says '<app> closed the connection without a reply'."""
    monkeypatch.setattr("vapi_dev.session.STOP_GRACE_S", 0.2)

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(3)  # slow, but still working on it

    async with raw_app(app) as (base, _):
        async with running_listener(base) as lst:
            _, writer = await connect(lst)
            writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            for _ in range(100):
                if lst.session.receiver.in_flight:
                    break
                await asyncio.sleep(0.01)
        ex = (await lst.sink.wait_finished(1, timeout=1))[0]
        writer.close()
    assert ex.error is not None and "closed the connection" not in ex.error, ex.error
