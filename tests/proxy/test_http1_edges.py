"""HTTP/1.1 edge cases of the receiver and the forwarder that once went wrong: split replies, early
answers, broken or upgraded pipelines, callers that hang up or stop reading, shutdown, trailers."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from tests.support.apps import AppState
from tests.support.listener import running_listener
from tests.support.raw_http import connect, raw_app, read_request, read_response


async def test_whole_reply_arriving_in_two_reads_does_not_hang_the_event_loop(cli: Any) -> None:
    """A small JSON reply (Content-Length, so 'whole') whose body comes in two TCP reads: read_all()
    busy-loops without ever yielding, so the listener process stops serving altogether."""

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"a":')
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.write(b"123456}")
        await writer.drain()

    async with raw_app(app) as (base, _):
        proc = cli("listen", base, "--port", "0", "--json")
        ready = await asyncio.to_thread(proc.read_json_line)
        host, port = ready["local_url"].removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        try:
            status, _, body = await asyncio.wait_for(read_response(reader), 1.5)
        finally:
            writer.close()
    assert (status, body) == (200, b'{"a":123456}')


async def test_pipelined_request_followed_by_garbage_still_gets_its_reply(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi" + b"NOT HTTP AT ALL\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 3)
        writer.close()
    assert raw.startswith(b"HTTP/1.1 200"), raw


async def test_upgrade_request_gets_an_answer(fake_app: tuple[str, AppState]) -> None:
    """curl --http2 on an http:// URL sends Upgrade: h2c; the caller must get some reply (501 or 200)."""
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
        )
        raw = await asyncio.wait_for(reader.read(), 3)
        writer.close()
    assert raw.startswith(b"HTTP/1.1 "), raw


async def test_caller_hanging_up_on_a_quiet_stream_releases_the_app_connection() -> None:
    """The caller goes away while the app's stream is quiet: the app connection should be closed
    (so the app stops generating), not kept until the app happens to write again."""
    app_saw_eof = asyncio.Event()
    app_done = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"d\r\ndata: first\n\n\r\n"
            )
            await writer.drain()
            try:
                if await asyncio.wait_for(reader.read(), 1.0) == b"":
                    app_saw_eof.set()
            except asyncio.TimeoutError:
                writer.write(b"0\r\n\r\n")  # end the stream so the listener can stop quickly
                await writer.drain()
        finally:
            app_done.set()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        await asyncio.wait_for(reader.readuntil(b"data: first\n\n"), 2)
        writer.close()  # the caller hangs up mid-stream
        await asyncio.wait_for(app_done.wait(), 3)
    assert app_saw_eof.is_set(), "the app connection stayed open after the caller went away"


async def test_timeout_during_a_large_upload_leaves_no_unretrieved_future_exception() -> None:
    """The app never reads a large body nor answers: 504 after the deadline. When the app connection
    then ends, the head future that send() abandoned gets an exception nobody retrieves."""
    loop = asyncio.get_running_loop()
    errors: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
    hang_up = asyncio.Event()

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the head only; the body is never read
        await asyncio.wait_for(hang_up.wait(), 5)

    try:
        async with raw_app(app) as (base, _), running_listener(base, timeout=0.3) as lst:
            reader, writer = await connect(lst)
            body = b"z" * (16 * 1024 * 1024)
            writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            status, _, _ = await asyncio.wait_for(read_response(reader), 3)
            assert status == 504
            hang_up.set()  # the app closes its end now
            await lst.sink.wait_finished(1)
            for _ in range(20):  # let connection_lost run
                await asyncio.sleep(0.01)
            writer.close()
        gc.collect()
        await asyncio.sleep(0)
    finally:
        loop.set_exception_handler(previous)
    assert [c["message"] for c in errors] == []


async def test_app_sending_its_head_early_still_gets_the_whole_large_body() -> None:
    """An app that answers 200 + event-stream headers first and reads the upload afterwards (Node's
    res.flushHeaders(), Go's early WriteHeader): the request body must still be sent in full."""
    body = b"b" * (32 * 1024 * 1024)

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        length = int(next(h for h in head.split("\r\n") if h.lower().startswith("content-length:")).split(":")[1])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        await writer.drain()
        try:
            got = len(await asyncio.wait_for(reader.readexactly(length), 1.0))
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            got = -1
        msg = f"got {got}".encode()
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(msg), msg))
        await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /llm HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        status, _, reply = await asyncio.wait_for(read_response(reader), 3)
        writer.close()
    assert (status, reply) == (200, b"got %d" % len(body))


async def test_chunked_upload_trailers_are_not_forwarded_as_headers(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nhi\r\n0\r\nX-Trailer: sneaky\r\n\r\n"
        )
        status, _, body = await asyncio.wait_for(read_response(reader), 3)
        writer.close()
    assert (status, body) == (200, b"hi")
    assert "x-trailer" not in {k.lower() for k, _ in state.seen[-1]["headers"]}


async def test_reply_in_flight_at_shutdown_says_connection_close(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /slow?s=0.3 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        for _ in range(100):  # until the app has the request
            if lst.session.receiver.in_flight:
                break
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(lst.session.receiver.stop(2.0))
        status, headers, _ = await asyncio.wait_for(read_response(reader), 3)
        await asyncio.wait_for(stopping, 3)
        writer.close()
    assert status == 200
    assert headers.get("connection", "").lower() == "close"


async def test_earlier_pipelined_reply_survives_a_refused_upload_behind_it(
    fake_app: tuple[str, AppState], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow request, then (pipelined) one over the body limit: the 413's linger timer must not cut
    the connection before the slow request's reply has been written."""
    monkeypatch.setattr("vapi_dev.proxy.server.LINGER_S", 0.2)
    base, _ = fake_app
    async with running_listener(base, max_body=1024) as lst:
        reader, writer = await connect(lst)
        writer.write(
            b"POST /slow?s=0.5 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n"
        )
        first = await asyncio.wait_for(read_response(reader), 3)
        second = await asyncio.wait_for(read_response(reader), 3)
        writer.close()
    assert (first[0], second[0]) == (200, 413)


async def test_http_1_0_keep_alive_caller_is_told_the_connection_persists(fake_app: tuple[str, AppState]) -> None:
    """An HTTP/1.0 caller that asked for keep-alive and is not told 'Connection: keep-alive' waits for
    the close to end the exchange; the listener keeps the connection open instead."""
    base, _ = fake_app
    async with running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /k HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nhi")
        status, headers, body = await asyncio.wait_for(read_response(reader), 3)
        writer.close()
    assert (status, body) == (200, b"hi")
    assert headers.get("connection", "").lower() == "keep-alive"


async def test_shutdown_ends_a_reply_stuck_on_a_caller_that_stopped_reading() -> None:
    """After stop()'s grace, a streamed reply blocked on a caller that no longer reads must end: the
    connection is only close()d (which waits to flush), so the relay waits on its drain forever."""

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(400):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(b"POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)  # then the caller stops reading
        receiver = lst.session.receiver
        assert receiver._server is not None
        for _ in range(200):  # until the caller's socket is full
            if any(c.flow.write_paused for c in receiver._server.connections):
                break
            await asyncio.sleep(0.01)
        await receiver.stop(0.2)
        await lst.session.forwarder.close()
        for _ in range(50):
            if not receiver.in_flight:
                break
            await asyncio.sleep(0.01)
        stuck = receiver.in_flight
        writer.transport.abort()  # unblock it so the test can end
    assert stuck == 0, "the exchange is still in flight after shutdown"
