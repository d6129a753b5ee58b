"""Sending a recorded or sample request to an app again: the target URL, re-signing, one reply.

Used by `trigger`, `replay`, `vapi-dev test` and the inspector's replay; every failure is a ``SendError``
with one sentence (secrets in the URL or in the library's message masked).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from vapi_dev.errors import ExitStatus, VapiDevError

if TYPE_CHECKING:
    import aiohttp

    from vapi_dev.exchange import Headers
    from vapi_dev.journal.fixtures import Request
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig


class SendError(VapiDevError):
    """The request could not be sent, or got no reply: ``message`` says which and what to do."""


class BadTarget(SendError):
    """Where to send is not an http(s) URL or a port."""

    exit_status = ExitStatus.USAGE


@dataclasses.dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    ms: float


def base_url(to: str) -> str:
    """Accept a port ("3000"), host:port or a URL."""
    if to.isdigit():
        return f"http://127.0.0.1:{to}"
    return to if "://" in to else f"http://{to}"


def target_url(to: str, path: str, query: str) -> str:
    """``to`` with a path is used exactly; a bare ``to`` keeps the recorded path and query."""
    base = base_url(to)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadTarget(f"{to!r} is not an http(s) URL or port; pass --to http://127.0.0.1:3000/webhook.")
    if parts.path not in ("", "/"):
        return base
    return base.rstrip("/") + (path or "/") + (f"?{query}" if query else "")


def signed_headers(req: Request, url: str, auth: AuthConfig) -> Headers:
    """The recorded headers worth sending again, with fresh credentials from ``auth`` (secret, bearer, HMAC)."""
    from vapi_dev.journal.fixtures import resend_headers
    from vapi_dev.redact import MASK
    from vapi_dev.vapi.auth import sign

    signed = sign(auth, method=req.method, url=url, body=req.body) if auth.enabled else []
    return resend_headers(req.headers, MASK, drop=[k for k, _ in signed]) + signed


async def send_async(
    req: Request,
    url: str,
    auth: AuthConfig,
    timeout: float,
    hint: str = "",
    *,
    session: aiohttp.ClientSession | None = None,
    mask: Masker | None = None,
) -> Reply:
    """Send ``req`` to ``url`` re-signed and read the whole reply; ``session`` reuses connections (else one
    for this request). Raises SendError: nothing listening, no reply within ``timeout``, or a client error;
    its sentence is masked by ``mask`` (default: ``auth``'s secrets), since the URL and messages may carry them."""
    import aiohttp

    from vapi_dev.redact import Masker

    headers = signed_headers(req, url, auth)
    shown = (mask or Masker(auth.secret_values(), auth.secret_header_names())).text
    own = session is None
    client = aiohttp.ClientSession() if session is None else session
    started = time.monotonic()
    try:
        async with client.request(
            req.method,
            url,
            headers=headers,
            data=req.body,
            allow_redirects=False,
            skip_auto_headers=("Content-Type",),
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            data = await resp.read()
            return Reply(resp.status, list(resp.headers.items()), data, (time.monotonic() - started) * 1000)
    except aiohttp.ClientConnectorError:
        raise SendError(f"nothing is listening on {shown(url)}{hint}") from None
    except asyncio.TimeoutError:
        raise SendError(
            f"no reply from {shown(url)} within {timeout:g} s; is the app stuck? (--timeout sets the limit)"
        ) from None
    except aiohttp.ClientError as exc:
        raise SendError(f"the request to {shown(url)} failed ({exc.__class__.__name__}: {shown(str(exc))}).") from None
    finally:
        if own:
            await client.close()


def send(req: Request, url: str, auth: AuthConfig, timeout: float, hint: str = "", mask: Masker | None = None) -> Reply:
    """``send_async`` from synchronous code (a command): one request, its own event loop."""
    return asyncio.run(send_async(req, url, auth, timeout, hint, mask=mask))
