"""A recording "developer app" for scripts/abuse.py, written on raw asyncio so it can also misbehave.

It records every request it receives (method, raw URL, body size, header count, any Upgrade header)
without keeping bodies, and answers by path:

- ``/__abuse/records?since=N``: the records from number N on, as JSON (the script asks directly,
  never through vapi-dev; not recorded);
- ``…/big-tool-reply``: a tool-calls reply with 20,000 results (about 2 MB);
- ``…/two-replies``: two complete replies in one write (a desynchronising app);
- ``…/upgrade-101``: ``101 Switching Protocols``, then silence;
- ``…/close-each``: a normal reply, then the connection is closed without ``Connection: close``;
- anything else: ``200 {"ok": true, "path": PATH}`` (the path, never the query, lets a caller notice a
  reply meant for another request).

usage: python scripts/abuse_app.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httptools

RECORDS: list[dict[str, Any]] = []
BIG_RESULTS = 20_000


def big_tool_reply() -> bytes:
    results = [{"toolCallId": f"call_{i:05d}", "result": f"result {i:05d} " + "x" * 50} for i in range(BIG_RESULTS)]
    return json.dumps({"results": results}).encode()


BIG_REPLY = big_tool_reply()


def response(status: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class AppProtocol(asyncio.Protocol):
    """One connection from vapi-dev (or from the script, for the records)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = 0
        self.upgrade_body_left: int | None = None  # httptools stops at an Upgrade request: its body is counted here

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    # -- httptools callbacks ------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.url, self.headers, self.body = b"", [], 0

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += len(body)

    def on_message_complete(self) -> None:
        if not self.parser.should_upgrade():  # an Upgrade request's body comes after the exception
            self.answer(bool(self.parser.should_keep_alive()))

    # -- bytes in -----------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        if self.upgrade_body_left is not None:
            self._upgrade_body(data)
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            length = next((int(v) for n, v in self.headers if n.lower() == b"content-length"), 0)
            self.upgrade_body_left = length
            self._upgrade_body(data[int(exc.args[0]) :] if exc.args else b"")
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(response("400 Bad Request", b'{"error":"bad request"}'))
                self.transport.close()

    def _upgrade_body(self, data: bytes) -> None:
        assert self.upgrade_body_left is not None
        take = min(len(data), self.upgrade_body_left)
        self.body += take
        self.upgrade_body_left -= take
        if self.upgrade_body_left == 0:
            self.upgrade_body_left = None
            self.answer(keep_alive=False)  # the parser cannot go on after an upgrade: close after this reply

    # -- answers ------------------------------------------------------------------------------------
    def answer(self, keep_alive: bool) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        url = self.url.decode("latin-1")
        path = urlsplit(url).path
        if path == "/__abuse/records":
            since = int(parse_qs(urlsplit(url).query).get("since", ["0"])[0])
            transport.write(
                response("200 OK", json.dumps({"count": len(RECORDS), "records": RECORDS[since:]}).encode())
            )
            return
        upgrade = next((v.decode("latin-1") for n, v in self.headers if n.lower() == b"upgrade"), None)
        method = self.parser.get_method().decode("latin-1")
        RECORDS.append(
            {"method": method, "url": url, "body": self.body, "headers": len(self.headers), "upgrade": upgrade}
        )
        if path.endswith("/big-tool-reply"):
            transport.write(response("200 OK", BIG_REPLY))
        elif path.endswith("/two-replies"):
            transport.write(response("200 OK", b'{"first":1}') + response("200 OK", b'{"second":2}'))
        elif path.endswith("/upgrade-101"):
            transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n")
            return
        elif path.endswith("/close-each"):
            transport.write(response("200 OK", b'{"ok":true}'))
            keep_alive = False
        else:
            transport.write(response("200 OK", json.dumps({"ok": True, "path": path}).encode()))
        if not keep_alive:
            transport.close()


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(AppProtocol, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
