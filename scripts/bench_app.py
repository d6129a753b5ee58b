"""A fast local "developer app" for scripts/bench: answers every tool-calls request at once.

usage: python scripts/bench_app.py PORT
"""

import sys

from aiohttp import web

REPLY = b'{"results":[{"toolCallId":"toolcall_123","result":"Sunny, 21 C"}]}'


async def handler(request: web.BaseRequest) -> web.Response:
    await request.read()
    return web.Response(body=REPLY, content_type="application/json")


async def main(port: int) -> None:
    import asyncio

    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    import asyncio

    asyncio.run(main(int(sys.argv[1])))
