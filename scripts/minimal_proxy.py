"""Baseline for scripts/bench: the smallest honest aiohttp pass-through proxy (no display, no checks).

usage: python scripts/minimal_proxy.py LISTEN_PORT TARGET_URL
"""

import sys

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host", "content-length"}


async def make_app(target: str) -> web.Application:
    session: aiohttp.ClientSession | None = None

    async def handler(request: web.Request) -> web.StreamResponse:
        assert session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(
            request.method, target + request.raw_path, headers=headers, data=body, allow_redirects=False
        ) as resp:
            data = await resp.read()
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
            return web.Response(status=resp.status, body=data, headers=out)

    async def ctx(app: web.Application):  # type: ignore[no-untyped-def]
        nonlocal session
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), auto_decompress=False)
        yield
        await session.close()

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.cleanup_ctx.append(ctx)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


if __name__ == "__main__":
    port, target = int(sys.argv[1]), sys.argv[2].rstrip("/")
    web.run_app(make_app(target), host="127.0.0.1", port=port, print=None, access_log=None)
