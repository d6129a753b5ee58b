"""The app side of the forwarder when the app misbehaves, as nginx meets it: two replies to one request, a
101 nobody asked for, bytes on an idle pooled connection, pooled connections the app has closed or reset,
and backpressure on a reused connection."""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import struct

import pytest

from tests.support.listener import running_listener
from tests.support.net import wait_until
from tests.support.raw_http import connect, raw_app, read_request, read_response
from vapi_dev.config import parse_target
from vapi_dev.proxy.client import WRITE_SLICE, Pool, UpstreamError

REPLY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
CHUNKED_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nb\r\n" + (
    b'{"ok":true}\r\n0\r\n\r\n'
)
POST = b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def detail(body: bytes) -> str:
    return str(json.loads(body)["detail"])


@pytest.mark.parametrize("first", [REPLY, CHUNKED_REPLY], ids=["content-length", "chunked"])
async def test_two_replies_in_one_read_are_a_502_never_a_merged_reply(first: bytes) -> None:
    dropped = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(first + b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
        await writer.drain()
        if await asyncio.wait_for(reader.read(), 5) == b"":
            dropped.set()  # the connection is not kept for another request

    async with raw_app(app) as (base, connections), running_listener(base) as lst:
        reader, writer = await connect(lst)
        replies = []
        for _ in range(2):  # the caller's connection goes on; each request gets a new app connection
            writer.write(POST)
            replies.append(await asyncio.wait_for(read_response(reader), 5))
        writer.close()
        finished = await lst.sink.wait_finished(2)
        await asyncio.wait_for(dropped.wait(), 5)
    for status, _, body in replies:
        assert status == 502
        assert "sent two replies to one request" in detail(body), body
        assert b"second" not in body
    assert len(connections) == 2
    assert all("sent two replies to one request" in (ex.error or "") for ex in finished)


async def test_101_to_a_plain_post_is_a_502_and_nothing_of_it_reaches_the_caller() -> None:
    seen: list[str] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head, _ = await read_request(reader)
        seen.append(head.lower())
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi")
        await writer.drain()
        await asyncio.wait_for(reader.read(), 5)

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        replies = []
        for _ in range(2):  # the caller's connection goes on, with nothing of the app's other protocol on it
            writer.write(POST)
            replies.append(await asyncio.wait_for(read_response(reader), 5))
        writer.close()
    for status, headers, body in replies:
        assert status == 502
        assert "upgrade" not in headers
        assert "answered 101 Switching Protocols to a request that asked for no upgrade" in detail(body), body
    assert all("upgrade" not in h for h in seen)


async def test_bytes_on_an_idle_pooled_connection_discard_it() -> None:
    """The app writes a reply nobody asked for on a connection resting in the pool: that connection must
    not carry the next request (whose reply it would become)."""
    go, dropped = asyncio.Event(), asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(REPLY)
        await writer.drain()
        if len(connections) > 1:
            return
        await asyncio.wait_for(go.wait(), 5)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale")
        await writer.drain()
        if await asyncio.wait_for(reader.read(), 5) == b"":
            dropped.set()

    async with raw_app(app) as (base, connections), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(POST)
        first = await asyncio.wait_for(read_response(reader), 5)
        go.set()  # the app connection is idle in the pool now
        await asyncio.wait_for(dropped.wait(), 5)
        writer.write(POST)
        second = await asyncio.wait_for(read_response(reader), 5)
        writer.close()
    assert first[0] == second[0] == 200
    assert second[2] == b'{"ok":true}'
    assert len(connections) == 2


async def one_reply_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An app with no keep-alive that does not say so: one reply, then the socket is closed (raw_app)."""
    await read_request(reader)
    writer.write(REPLY)
    await writer.drain()


async def test_pipelined_posts_to_an_app_that_closes_after_each_reply_all_succeed() -> None:
    """Pipelined requests are forwarded back to back: the next one takes the pooled connection the moment
    the previous reply is relayed, before the loop has read the app's close. It must see the close anyway."""
    async with raw_app(one_reply_then_close) as (base, connections), running_listener(base) as lst:
        reader, writer = await connect(lst)
        failures: collections.Counter[str] = collections.Counter()
        for _ in range(100):  # 300 POSTs, three at a time
            writer.write(POST * 3)
            for _ in range(3):
                status, _, body = await asyncio.wait_for(read_response(reader), 10)
                if status != 200:
                    failures[f"{status} {detail(body)}"] += 1
        writer.close()
    assert not failures, failures
    assert len(connections) == 300


async def test_a_request_on_a_connection_the_app_has_reset_is_known_unsent() -> None:
    """The pooled connection was reset (RST) by the app: sending on it fails at once and says that nothing
    reached the app, which is what lets the forwarder retry even a POST."""
    go = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(REPLY)
        await writer.drain()
        await asyncio.wait_for(go.wait(), 5)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset

    async with raw_app(app) as (base, _):
        pool = Pool(parse_target(base), None)
        head = POST[: POST.index(b"\r\n\r\n") + 4]
        try:
            conn = await pool.acquire()
            await conn.send(head, b"{}", False)
            assert await conn.read_all() == b'{"ok":true}'
            pool.release(conn)
            go.set()
            await wait_until(lambda: conn.closed)
            with pytest.raises(UpstreamError) as failed:
                await asyncio.wait_for(conn.send(head, b"{}", False), 5)
            assert failed.value.unsent
            fresh = await pool.acquire()
            assert fresh is not conn
            fresh.close()
        finally:
            pool.close()


async def test_a_reused_connection_still_write_paused_keeps_its_backpressure() -> None:
    """A request answered before the app read its body leaves the connection reusable with its transport
    still paused for writing. The next exchange on it must wait for the app to drain, not queue all it has."""
    go = asyncio.Event()
    replies: list[bytes] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # the body is not read before answering
        writer.write(REPLY)
        await writer.drain()
        await asyncio.wait_for(go.wait(), 10)
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        _, body = await read_request(reader)
        replies.append(body[:4])
        writer.write(REPLY)
        await writer.drain()
        await reader.read()

    listening = socket.socket()
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # small kernel buffers: the proxy's own fill
    listening.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(app, sock=listening)
    pool = Pool(parse_target(f"http://127.0.0.1:{listening.getsockname()[1]}"), None)
    try:
        conn = await pool.acquire()
        assert conn.transport is not None
        conn.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        first = b"a" * WRITE_SLICE
        await conn.send(b"POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(first), first, False)
        assert await conn.read_all() == b'{"ok":true}'
        assert conn.flow.write_paused, "precondition: the first body is still in the proxy's buffer"
        pool.release(conn)
        assert await pool.acquire() is conn
        before = conn.transport.get_write_buffer_size()
        second = b"b" * (3 * WRITE_SLICE)
        head = b"POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(second)
        sending = asyncio.create_task(conn.send(head, second, False))
        await wait_until(lambda: conn.transport is not None and conn.transport.get_write_buffer_size() > before)
        buffered = conn.transport.get_write_buffer_size() - before
        assert conn.flow.write_paused
        assert buffered <= len(head) + WRITE_SLICE, f"{buffered} bytes queued without waiting for the app"
        go.set()
        await asyncio.wait_for(sending, 10)
        assert await conn.read_all() == b'{"ok":true}'
        assert replies == [b"bbbb"]
    finally:
        go.set()
        pool.close()
        server.close()
