"""The fake developer app that listeners forward to, and serving any aiohttp app on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class AppState:
    seen: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)


def make_app(state: AppState) -> web.Application:
    """Echo by default; /tool answers like a Vapi server; /stream, /stall, /slow, /big, /redirect,
    /gzip and /reset behave as their names say. Every request is recorded in ``state.seen``."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append(
            {
                "method": request.method,
                "path_qs": request.raw_path,
                "headers": list(request.headers.items()),
                "body": body,
            }
        )
        return web.Response(body=body, headers={"X-App": "echo", "Content-Type": "application/octet-stream"})

    async def tool(request: web.Request) -> web.StreamResponse:
        data = await request.json()
        msg = data["message"]
        state.seen.append({"path_qs": request.raw_path, "type": msg.get("type")})
        if msg.get("type") == "tool-calls":
            return web.json_response(
                {"results": [{"toolCallId": c["id"], "result": "Sunny, 21 C"} for c in msg.get("toolCallList", [])]}
            )
        if msg.get("type") == "assistant-request":
            return web.json_response({"assistantId": "asst_123"})
        return web.json_response({})

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"data: first\n\n")
        await asyncio.wait_for(state.release.wait(), 10)
        await resp.write(b"data: second\n\n")
        await resp.write_eof()
        return resp

    async def stall(request: web.Request) -> web.StreamResponse:
        await request.read()
        state.seen.append({"path_qs": request.raw_path, "stalled": True})
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(state.release.wait(), 10)
        return web.json_response({"results": []})

    async def slow(request: web.Request) -> web.StreamResponse:
        await request.read()
        state.seen.append({"path_qs": request.raw_path, "slow": True})
        await asyncio.sleep(float(request.query.get("s", "0.5")))
        return web.json_response({"slow": True})

    async def big(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        state.seen.append({"size": len(body), "tail": body[-16:]})
        return web.json_response({"size": len(body)})

    async def redirect(request: web.Request) -> web.StreamResponse:
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async def gzip_reply(request: web.Request) -> web.StreamResponse:
        return web.Response(
            body=gzip.compress(b'{"ok": true}'),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    app = web.Application(client_max_size=512 * 1024 * 1024)
    app.router.add_route("*", "/stream{tail:.*}", stream)
    app.router.add_route("*", "/stall{tail:.*}", stall)
    app.router.add_route("*", "/slow", slow)
    app.router.add_route("*", "/big", big)
    app.router.add_route("*", "/redirect", redirect)
    app.router.add_route("*", "/gzip", gzip_reply)
    app.router.add_route("*", "/reset", reset)
    app.router.add_route("*", "/tool{tail:.*}", tool)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def serve(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None, shutdown_timeout: float = 60.0
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on 127.0.0.1 at a free port: (the runner, to clean up; the base URL)."""
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    scheme = "https" if ssl_context is not None else "http"
    return runner, f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
