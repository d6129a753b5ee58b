"""Test helpers for the ngrok provider: install the fake agent, a tiny receiver app, PID checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from aiohttp import web

FAKE_SOURCE = Path(__file__).resolve().parent.parent / "fakes" / "fake_ngrok.py"
TOKEN = "2fAkEt0kEnSeCrEt_abcdefghijklmnop"


def write_fake_agent(path: Path) -> Path:
    """Write the fake agent as an executable that runs in this interpreter (tunnels.md §3.3)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!{sys.executable}\n" + FAKE_SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    path.chmod(0o755)
    return path


def make_receiver() -> web.Application:
    """Answers like vapi-dev's receiver: the reserved ping path, and an echo for everything else."""

    async def ping(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "nonce": request.match_info["nonce"]})

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        return web.json_response({"path": request.path, "got": body.decode()})

    app = web.Application()
    app.router.add_get("/__vapi-dev/ping/{nonce}", ping)
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


def pids(pidfile: Path) -> list[int]:
    if not pidfile.exists():
        return []
    return [int(line) for line in pidfile.read_text().split()]


def kill_leftovers(pidfile: Path) -> None:
    """Backstop after a test: SIGKILL any fake agent still alive (tests assert their processes are gone)."""
    for pid in pids(pidfile):
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has exited; only its entry remains)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


async def wait_gone(pid: int, timeout: float = 5.0) -> bool:
    """Poll (bounded) until ``pid`` has exited."""
    for _ in range(int(timeout / 0.05)):
        if not alive(pid):
            return True
        await asyncio.sleep(0.05)
    return not alive(pid)
