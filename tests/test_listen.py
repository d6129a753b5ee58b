"""The listen core through real sockets: forwarding, relaying, streaming, failures."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import time

import aiohttp
import pytest

from tests.support.apps import AppState
from tests.support.listener import running_listener
from tests.support.net import free_port
from vapi_dev.config import Config, parse_target
from vapi_dev.exchange import Pending
from vapi_dev.proxy.relay import Forwarder
from vapi_dev.receiver import ListenError, Receiver

TOOL_CALL = (
    b'{"message":{"type":"tool-calls","call":{"id":"call_1"},"toolCallList":'
    b'[{"id":"tc1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}}'
)


async def test_bytes_pass_unchanged_both_ways(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    body = bytes(range(256)) * 40 + b"\xff\xfe not utf-8 \x80"
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/echo", data=body, headers={"Content-Type": "application/json"}) as r:
            reply = await r.read()
            assert r.status == 200
            assert r.headers["X-App"] == "echo"
        assert state.seen[-1]["body"] == body
        assert reply == body
        ex = (await lst.sink.wait_finished(1))[0]
        assert ex.body == body and ex.response_body == body
        assert ex.message_type is None  # not JSON: shown as plain HTTP
        assert ex.request_bytes == len(body) and ex.response_bytes == len(body)


@pytest.mark.parametrize(
    ("target_path", "incoming", "expected"),
    [
        ("/webhook", "/tools?x=1", "/webhook/tools?x=1"),
        ("/webhook", "/", "/webhook"),
        ("", "/a/b?c=d&e", "/a/b?c=d&e"),
        ("/api/vapi", "/?q=%20x", "/api/vapi?q=%20x"),
    ],
)
async def test_path_and_query_mapping(
    fake_app: tuple[str, AppState], target_path: str, incoming: str, expected: str
) -> None:
    base, state = fake_app
    async with running_listener(base + target_path) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + incoming, data=b"{}") as r:
            assert r.status == 200
    assert state.seen[-1]["path_qs"] == expected


async def test_headers_forwarded_minus_hop_by_hop(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    port = base.rsplit(":", 1)[1]
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        headers = {
            "X-Vapi-Secret": "s3cret",
            "X-Custom": "1",
            "Connection": "keep-alive, X-Drop-Me",
            "X-Drop-Me": "x",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Content-Type": "application/json",
        }
        async with client.post(lst.url + "/h", data=b"{}", headers=headers) as r:
            assert r.status == 200
            assert "Keep-Alive" not in r.headers or r.headers["Keep-Alive"] != "timeout=5"
    seen = {k.lower(): v for k, v in state.seen[-1]["headers"]}
    assert seen["x-vapi-secret"] == "s3cret" and seen["x-custom"] == "1"
    assert seen["content-type"] == "application/json"
    assert "x-drop-me" not in seen and "keep-alive" not in seen and "te" not in seen
    assert seen["host"] == f"127.0.0.1:{port}"
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"].startswith("127.0.0.1:")


async def test_streaming_reply_arrives_before_app_finishes(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/stream", data=b"{}") as r:
            first = await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
            assert first == b"data: first\n\n"
            assert not state.release.is_set()  # the app is still holding the reply open
            state.release.set()
            rest = await asyncio.wait_for(r.read(), 5)
        assert rest == b"data: second\n\n"
        ex = (await lst.sink.wait_finished(1))[0]
        assert ex.streamed and ex.response_body == b"data: first\n\ndata: second\n\n"


async def test_unreachable_app_gives_502_quickly() -> None:
    port = free_port()
    async with running_listener(f"127.0.0.1:{port}") as lst, aiohttp.ClientSession() as client:
        t0 = time.monotonic()
        async with client.post(lst.url + "/", data=TOOL_CALL) as r:
            body = await r.json()
            assert r.status == 502
        assert time.monotonic() - t0 < 1.0
        assert f"nothing is listening on 127.0.0.1:{port}" in body["detail"]
        assert "is your server running?" in body["detail"]
        ex = (await lst.sink.wait_finished(1))[0]
        assert ex.error_kind == "unreachable" and ex.status == 502
        # the listener keeps running
        async with client.post(lst.url + "/", data=b"{}") as r:
            assert r.status == 502


async def test_deadline_gives_504_naming_type_and_deadline(fake_app: tuple[str, AppState]) -> None:
    base, _state = fake_app
    async with running_listener(base, timeout=0.3) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/stall", data=TOOL_CALL) as r:
            body = await r.json()
            assert r.status == 504
        assert "tool-calls" in body["detail"] and "0.3 s deadline" in body["detail"]
        ex = (await lst.sink.wait_finished(1))[0]
        assert ex.error_kind == "timeout" and ex.message_type == "tool-calls"


async def test_assistant_request_has_its_own_deadline(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        for payload in (
            b'{"message":{"type":"assistant-request","call":{"id":"c"}}}',
            b'{"message":{"type":"status-update","call":{"id":"c"}}}',
        ):
            async with client.post(lst.url + "/tool", data=payload) as r:
                assert r.status == 200
        a, s = await lst.sink.wait_finished(2)
        assert (a.deadline_s, a.reply_needed, a.call_id) == (7.5, True, "c")
        assert (s.deadline_s, s.reply_needed) == (20.0, False)
        assert a.response_json() == {"assistantId": "asst_123"}


async def test_pending_event_for_slow_reply_needed_exchange(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        task = asyncio.create_task(client.post(lst.url + "/stall", data=TOOL_CALL))
        for _ in range(300):
            if any(isinstance(e, Pending) for e in lst.sink.events):
                break
            await asyncio.sleep(0.01)
        assert any(isinstance(e, Pending) for e in lst.sink.events)
        state.release.set()
        r = await task
        assert r.status == 200
        r.release()


async def test_redirects_are_relayed_not_followed(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.get(lst.url + "/redirect", allow_redirects=False) as r:
            assert r.status == 302 and r.headers["Location"] == "/elsewhere"


async def test_compressed_reply_relayed_as_is(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession(auto_decompress=False) as client:
        async with client.get(lst.url + "/gzip") as r:
            raw = await r.read()
            assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(raw) == b'{"ok": true}'


async def test_app_resetting_the_connection_gives_502(fake_app: tuple[str, AppState]) -> None:
    base, _ = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/reset", data=b"{}") as r:
            assert r.status == 502
        ex = (await lst.sink.wait_finished(1))[0]
        assert ex.error_kind == "reset"


async def test_64_mb_body(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    body = os.urandom(1024) * (64 * 1024)
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/big", data=body) as r:
            assert r.status == 200
            assert (await r.json())["size"] == len(body)
    assert state.seen[-1]["size"] == len(body) and state.seen[-1]["tail"] == body[-16:]
    assert hashlib.sha256(body).digest()  # the body itself was never re-encoded


async def test_port_in_use_fails_at_once() -> None:
    async with running_listener("3000") as lst:
        config = Config(port=int(lst.url.rsplit(":", 1)[1]))
        receiver = Receiver(config, Forwarder(parse_target("3000")), lambda e: None)
        with pytest.raises(ListenError, match="already in use"):
            await receiver.start()


async def test_reserved_ping_path_is_not_forwarded(fake_app: tuple[str, AppState]) -> None:
    base, state = fake_app
    async with running_listener(base) as lst, aiohttp.ClientSession() as client:
        async with client.get(lst.url + "/__vapi-dev/ping/abc123") as r:
            assert (await r.json())["nonce"] == "abc123"
    assert state.seen == [] and lst.sink.finished() == []


async def test_body_over_the_limit_is_refused_visibly(fake_app: tuple[str, AppState]) -> None:
    from vapi_dev.exchange import Notice

    base, state = fake_app
    async with running_listener(base, max_body=1024) as lst, aiohttp.ClientSession() as client:
        async with client.post(lst.url + "/big", data=b"x" * 4096) as r:
            assert r.status == 413
        assert state.seen == []
        for _ in range(100):
            if any(isinstance(e, Notice) for e in lst.sink.events):
                break
            await asyncio.sleep(0.01)
        notes = [e for e in lst.sink.events if isinstance(e, Notice)]
        assert notes and "413" in notes[0].text
