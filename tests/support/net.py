"""Free ports, and bounded waits on a condition instead of fixed sleeps."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_until(condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.01) -> None:
    """Poll ``condition`` until it is true; AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


async def wait_listening(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> None:
    """Until something accepts TCP connections on ``host:port`` (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 0.5)
        except (OSError, asyncio.TimeoutError):
            if time.monotonic() >= deadline:
                raise AssertionError(f"nothing listening on {host}:{port} within {timeout} s") from None
            await asyncio.sleep(0.02)
        else:
            writer.close()
            return
