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

    from vapi_dev.exchange import Exchange, Headers
    from vapi_dev.journal.fixtures import Request
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig


READ_CHUNK = 256 * 1024  # bytes of a bounded reply read at a time


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
    """Accept a port ("3000"), a port with a path ("3000/webhook", ":3000/webhook": localhost, as `listen`
    reads its target), host:port or a URL. A port-first target that could be read two ways is a TargetError."""
    if to.isdigit():
        return f"http://127.0.0.1:{to}"
    if "://" not in to and (to[:1].isdigit() or to.startswith(":")):
        from vapi_dev.config import parse_target

        return parse_target(to).url
    return to if "://" in to else f"http://{to}"


def target_url(to: str, path: str, query: str) -> str:
    """``to`` with a path is used exactly; a bare ``to`` keeps the recorded path and query."""
    base = base_url(to)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadTarget(f"{to!r} is not an http(s) URL or port; pass --to http://127.0.0.1:3000/webhook.")
    if parts.path not in ("", "/"):
        return base
    # A recorded path always starts with /: one that does not ("@evil.example/x") would change the host the
    # request goes to, and its freshly signed credentials with it.
    path = path if path.startswith("/") else "/" + path
    return base.rstrip("/") + path + (f"?{query}" if query else "")


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
    max_bytes: int | None = None,
) -> Reply:
    """Send ``req`` to ``url`` re-signed and read the whole reply; ``session`` reuses connections (else one
    for this request). Raises SendError: nothing listening, no reply within ``timeout``, a reply larger than
    ``max_bytes`` (None: no bound), a request aiohttp will not write (a control character in a header), or a
    client error; its sentence is masked by ``mask`` (default: ``auth``'s secrets), since the URL and messages
    may carry them."""
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
            data = await resp.read() if max_bytes is None else await _read_at_most(resp, max_bytes, shown(url))
            return Reply(resp.status, list(resp.headers.items()), data, (time.monotonic() - started) * 1000)
    except aiohttp.ClientConnectorError:
        raise SendError(f"nothing is listening on {shown(url)}{hint}") from None
    except asyncio.TimeoutError:
        raise SendError(
            f"no reply from {shown(url)} within {timeout:g} s; is the app stuck? (--timeout sets the limit)"
        ) from None
    except aiohttp.ClientError as exc:
        raise SendError(f"the request to {shown(url)} failed ({exc.__class__.__name__}: {shown(str(exc))}).") from None
    except ValueError as exc:  # aiohttp refuses to write it: a control character in a header, a bad method
        raise SendError(f"the request to {shown(url)} could not be sent ({shown(str(exc))}).") from None
    finally:
        if own:
            await client.close()


async def _read_at_most(resp: aiohttp.ClientResponse, limit: int, url: str) -> bytes:
    """The reply's body, or SendError as soon as it is known to be larger than ``limit`` bytes (decoded: a
    small gzip reply can unpack to gigabytes), so a runaway reply costs ``limit``, not all of memory."""
    size = resp.content_length
    if size is None or size <= limit or resp.headers.get("Content-Encoding"):
        chunks, size = [], 0
        async for chunk in resp.content.iter_chunked(READ_CHUNK):
            size += len(chunk)
            if size > limit:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    raise SendError(f"the reply from {url} is over the {_size(limit)} limit on a reply; not read further.")


def _size(n: int) -> str:
    return f"{n / 1e6:g} MB" if n >= 1e6 else f"{n / 1e3:g} kB" if n >= 1e3 else f"{n} bytes"


def exchange_of(req: Request, url: str, reply: Reply, deadline_s: float | None = None) -> Exchange:
    """The Exchange of one sent request and its reply, as the receiver would have recorded it (type, call id,
    reply needed, deadline — ``deadline_s`` overrides the type's, like listen's --timeout), for check_reply."""
    from vapi_dev.exchange import DEFAULT_DEADLINE_S, Exchange, parse_json
    from vapi_dev.vapi.messages import normalise_type, read_message, type_info

    ex = Exchange.begin(req.method, req.path, req.query, req.headers, req.body)
    ex.payload = parse_json(req.body)
    mtype, ex.call_id = read_message(ex.payload)
    info = type_info(mtype)
    ex.message_type = normalise_type(mtype) if mtype else None
    ex.reply_needed = info.reply_needed
    ex.deadline_s = deadline_s or info.deadline_s or DEFAULT_DEADLINE_S
    ex.forward_url = url
    ex.status = reply.status
    ex.response_headers = reply.headers
    ex.response_body = reply.body
    ex.response_bytes = len(reply.body)
    ex.finished = ex.started + reply.ms / 1000
    return ex


def replayed(ex: Exchange, body: bytes, url: str, reply: Reply) -> Exchange:
    """``ex`` sent again with ``body`` to ``url``: the recorded exchange with the new request body and reply,
    its contract problems checked afresh (what `replay` and the inspector's replay show beside the old)."""
    import dataclasses

    from vapi_dev.exchange import parse_json
    from vapi_dev.vapi.contracts import check_reply

    new = dataclasses.replace(
        ex,
        body=body,
        request_bytes=len(body),
        request_truncated=False,
        payload=parse_json(body),
        forward_url=url,
        status=reply.status,
        response_headers=reply.headers,
        response_body=reply.body,
        response_bytes=len(reply.body),
        response_truncated=False,
        streamed=False,
        first_byte=None,
        finished=ex.started + reply.ms / 1000,
        error=None,
        error_kind=None,
        fallback=False,
        problems=[],
    )
    new.problems = check_reply(new)
    return new


def send(req: Request, url: str, auth: AuthConfig, timeout: float, hint: str = "", mask: Masker | None = None) -> Reply:
    """``send_async`` from synchronous code (a command): one request, its own event loop."""
    return asyncio.run(send_async(req, url, auth, timeout, hint, mask=mask))
