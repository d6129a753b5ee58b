"""HTTP/1.1 details of the receiver and the forwarder, over raw sockets: keep-alive to the app,
pipelining, Expect: 100-continue, HEAD, chunked uploads, close-delimited and interim replies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp

from tests.support.apps import AppState
from tests.support.http_client import post
from tests.support.listener import running_listener
from tests.support.net import wait_until
from tests.support.raw_http import connect, raw_app, read_request, read_response


async def test_connections_to_the_app_are_kept_alive_and_reused() -> None:
    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async with raw_app(keep_alive) as (base, connections), running_listener(base) as lst:
        async with aiohttp.ClientSession() as client:
            for _ in range(5):
                async with client.post(lst.url + "/x", data=b"{}") as r:
                    assert await r.read() == b"ok"
    assert len(connections) == 1


async def test_pipelined_requests_are_answered_in_order(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"".join(
                f"POST /p{i} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(word)}\r\n\r\n{word}".encode()
                for i, word in enumerate(["one", "two", "three"])
            )
        )
        bodies = [(await read_response(reader))[2] for _ in range(3)]
        writer.close()
    assert bodies == [b"one", b"two", b"three"]


async def test_expect_100_continue_is_answered(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5) == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"hello")
        status, _, body = await read_response(reader)
        writer.close()
    assert (status, body) == (200, b"hello")
    # vapi-dev already holds the body, so the app is not asked to confirm it again
    assert "expect" not in {k.lower() for k, _ in state.seen[-1]["headers"]}


async def test_head_reply_has_no_body_and_the_connection_goes_on() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(reader)
            if head.startswith("HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nget")
            await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert b"200 OK" in head and b"Content-Length: 1234" in head
        writer.write(b"GET /g HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, body = await asyncio.wait_for(read_response(reader), 5)
        writer.close()
    assert (status, body) == (200, b"get")


async def test_chunked_upload_is_forwarded_byte_exact(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    parts = [b"\x00\xff", b"chunk two", b"\xc3\x28 end"]

    async def gen() -> AsyncIterator[bytes]:
        for p in parts:
            yield p

    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/c", data=gen()) as r:
            assert await r.read() == b"".join(parts)
    seen = state.seen[-1]
    assert seen["body"] == b"".join(parts)
    names = {k.lower() for k, _ in seen["headers"]}
    assert "content-length" in names and "transfer-encoding" not in names


async def test_reply_ending_with_the_connection_is_relayed_whole() -> None:
    payload = b"x" * 100_000 + b"THE END"

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" + payload)
        await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.get(lst.url + "/whole") as r:
            assert await r.read() == payload
        ex = (await lst.sink.wait_finished(1))[0]
    assert ex.error is None and ex.response_bytes == len(payload)


async def test_interim_100_from_the_app_is_not_relayed() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await reader.read()

    async with raw_app(app) as (base, _), running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/i", data=b"{}") as r:
            assert (r.status, await r.read()) == (201, b"ok")


async def test_no_content_reply(fake_app: tuple[str, AppState]) -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            writer.write(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n")
            await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst, aiohttp.ClientSession() as client:
        for _ in range(2):
            async with client.post(lst.url + "/n", data=b"{}") as r:
                assert (r.status, r.headers["X-A"], await r.read()) == (204, "1", b"")


async def test_http_1_0_caller_gets_a_reply_and_the_connection_closes(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /old HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        raw = await asyncio.wait_for(reader.read(), 5)  # read() ends only when the listener closes
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"abc")


async def test_garbage_gets_400_and_the_listener_goes_on(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert raw.startswith(b"HTTP/1.1 400")
        assert (await post(lst.url + "/after", b"ok")).body == b"ok"


async def test_app_closing_an_idle_connection_is_not_an_error() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)  # then hang up, as Node does after its keep-alive timeout

    async with raw_app(app) as (base, connections), running_listener(base) as lst:
        pool = lst.session.forwarder._pool
        assert pool is not None
        async with aiohttp.ClientSession() as client:
            for _ in range(3):
                async with client.post(lst.url + "/k", data=b"{}") as r:
                    assert (r.status, await r.read()) == (200, b"ok")
                await wait_until(lambda: not pool._all)  # the app has hung up and vapi-dev has seen it
    assert len(connections) == 3
    assert all(ex.error is None for ex in lst.sink.finished())


async def test_oversized_headers_get_431_and_are_not_forwarded(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /h HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert raw.startswith(b"HTTP/1.1 431") and state.seen == []


async def test_app_answering_before_taking_the_whole_body_is_relayed() -> None:
    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the headers only; the body is never read
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 7\r\n\r\ntoo big")
        await writer.drain()
        await asyncio.sleep(5)

    body = b"z" * (16 * 1024 * 1024)
    async with raw_app(app) as (base, _), running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/up", data=body, timeout=aiohttp.ClientTimeout(total=10)) as r:
            assert (r.status, await r.read()) == (413, b"too big")
        ex = (await lst.sink.wait_finished(1))[0]
    assert ex.status == 413 and ex.error is None
