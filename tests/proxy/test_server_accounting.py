"""The server's held-body budget is given back whatever happens to a request (hang-ups, 408, bad framing),
and the '..' refusal holds for an absolute-form target too (real sockets on 127.0.0.1)."""

from __future__ import annotations

import asyncio

from tests.support.net import wait_until
from vapi_dev.proxy.server import InboundServer, Limits, Request
from vapi_dev.proxy.wire import json_reply


async def test_held_bytes_go_back_to_zero_after_hangups_timeouts_and_bad_framing() -> None:
    async def handler(req: Request) -> None:
        await asyncio.sleep(0.2)
        if req.stream is not None:
            while await req.stream.read():
                pass
        req.conn.send(req, json_reply(200, {"ok": 1}))

    srv = InboundServer(handler, limits=Limits(body_timeout=0.3, head_timeout=0.3), on_error=lambda e: None)
    port = await srv.start("127.0.0.1", 0)
    one = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"a" * 100000
    cases = [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 500000, 0.05),  # hang up mid-body
        (one * 10, 0.05),  # pipelined, hang up while the first is served
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + b"a" * 200000, 1.0),  # 408
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n30000\r\n"
            + b"a" * 0x30000
            + b"\r\nZZZ\r\n",
            0.2,
        ),  # bad chunk framing after a held part
    ]
    try:
        for data, wait in cases:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(wait)
            writer.transport.abort()
            await wait_until(lambda: not srv.connections, timeout=5)
            await wait_until(lambda: srv.held == 0, timeout=5)
            assert srv.held == 0
    finally:
        await srv.close()
