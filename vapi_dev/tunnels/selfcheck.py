"""Proving the public path works: a request through the public URL to the receiver's reserved ping route."""

from __future__ import annotations

import asyncio
import secrets
import time

import aiohttp

PING_PREFIX = "/__vapi-dev/ping/"


async def self_check(public_url: str, *, timeout: float = 5.0) -> tuple[bool, str]:
    """GET {public_url}/__vapi-dev/ping/<nonce>; ok when the receiver echoes the nonce. Never raises."""
    nonce = secrets.token_hex(8)
    url = public_url.rstrip("/") + PING_PREFIX + nonce
    # ngrok's free plan puts an interstitial page in front of browser-like traffic; this header skips it.
    headers = {"ngrok-skip-browser-warning": "1", "User-Agent": "vapi-dev-self-check"}
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            async with session.get(url, headers=headers, allow_redirects=False) as resp:
                status = resp.status
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
    except asyncio.TimeoutError:
        return False, f"no answer through {public_url} within {timeout:g} s"
    except aiohttp.ClientError as exc:
        return False, f"could not reach {public_url} ({type(exc).__name__})"
    ms = (time.monotonic() - started) * 1000
    if status == 200 and isinstance(data, dict) and data.get("nonce") == nonce:
        return True, f"public URL reaches vapi-dev ({ms:.0f} ms round trip)"
    if status == 200:
        return False, f"{public_url} answered, but not from this vapi-dev (is the tunnel pointing elsewhere?)"
    return False, f"{public_url} answered HTTP {status} instead of reaching vapi-dev"
