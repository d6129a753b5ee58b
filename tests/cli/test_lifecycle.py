"""TLS targets, the second Ctrl-C, and journal durability after kill -9 — through the real CLI."""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.support.apps import AppState, serve
from tests.support.http_client import post

BODY = b'{"message":{"type":"status-update","status":"in-progress","call":{"id":"call_k"}}}'


@pytest.fixture
async def tls_app(tmp_path: Path) -> Any:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)

    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"tls": True, "body": (await request.read()).decode()})

    app = web.Application()
    app.router.add_route("*", "/{t:.*}", handler)
    runner, url = await serve(app, ssl_context=ctx)
    yield url
    await runner.cleanup()


async def test_self_signed_https_target_needs_insecure(tls_app: str, cli: Any) -> None:
    strict = cli("listen", tls_app, "--port", "0", "--json")
    ready = await asyncio.to_thread(strict.read_json_line)
    r = await post(ready["local_url"], BODY)
    assert r.status == 502 and "--insecure" in r.json()["detail"]
    await asyncio.to_thread(strict.interrupt)
    relaxed = cli("listen", tls_app, "--port", "0", "--json", "--insecure")
    ready = await asyncio.to_thread(relaxed.read_json_line)
    r = await post(ready["local_url"], BODY)
    assert r.status == 200 and r.json() == {"tls": True, "body": BODY.decode()}
    code, _, _ = await asyncio.to_thread(relaxed.interrupt)
    assert code == 0


async def test_second_ctrl_c_exits_at_once(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, state = fake_app
    proc = cli("listen", base, "--port", "0", "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    pending = asyncio.create_task(post(ready["local_url"] + "/stall", BODY))  # held open by the app
    for _ in range(500):  # until the request is held by the app
        if state.seen:
            break
        await asyncio.sleep(0.01)
    assert state.seen
    t0 = time.monotonic()
    proc.proc.send_signal(signal.SIGINT)
    assert proc.read_stderr_line_containing("stopping")  # the first one was taken as a graceful stop
    proc.proc.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(proc.proc.wait, 10)
    assert code == 130
    assert time.monotonic() - t0 < 3  # well before the 5 s grace for in-flight exchanges
    state.release.set()
    pending.cancel()


async def test_journal_survives_kill_9(fake_app: tuple[str, AppState], cli: Any, tmp_path: Path) -> None:
    base, _ = fake_app
    journal = tmp_path / "j.sqlite3"
    proc = cli("listen", base, "--port", "0", "--json", "--journal", str(journal))
    ready = await asyncio.to_thread(proc.read_json_line)
    async with aiohttp.ClientSession() as client:
        for _ in range(40):
            async with client.post(ready["local_url"], data=BODY) as r:
                assert r.status == 200
    count = 0
    for _ in range(200):  # the writer commits in batches a fraction of a second apart
        with sqlite3.connect(journal) as db:
            count = db.execute("select count(*) from exchanges").fetchone()[0]
        if count == 40:
            break
        await asyncio.sleep(0.05)
    proc.proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.proc.wait, 10)
    with sqlite3.connect(journal) as db:
        assert db.execute("pragma integrity_check").fetchone()[0] == "ok"
        assert db.execute("select count(*) from exchanges").fetchone()[0] == 40
