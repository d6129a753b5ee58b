"""What the listener does with an exchange besides forwarding: verify auth, check the reply,
answer with a fallback, and make a printable (redacted) view of it."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from vapi_dev import redact
from vapi_dev.exchange import AuthResult, Exchange, Problem
from vapi_dev.proxy.wire import Reply
from vapi_dev.vapi import auth, contracts


def make_verifier(
    cfg: auth.AuthConfig, public_url: Callable[[], str | None], local_url: Callable[[], str]
) -> Callable[[Exchange], AuthResult | None]:
    """Verify each request as the app would, against the URL Vapi signed (the public one)."""

    def verify(ex: Exchange) -> AuthResult | None:
        base = (public_url() or local_url()).rstrip("/")
        url = base + ex.path + (f"?{ex.query}" if ex.query else "")
        return auth.verify(cfg, method=ex.method, url=url, headers=ex.headers, body=ex.body)

    return verify


def check(ex: Exchange) -> list[Problem]:
    return contracts.check_reply(ex)


def make_fallback() -> Callable[[Exchange, str], Awaitable[Reply | None]]:
    """``--fallback``: answer for an unreachable or slow app with a valid, clearly marked reply."""

    async def fallback(ex: Exchange, reason: str) -> Reply | None:
        status, body = contracts.fallback_reply(ex, reason)
        headers = [("Content-Type", "application/json"), ("X-Vapi-Dev-Fallback", "1")]
        ex.fallback = True
        ex.status = status
        ex.response_headers = headers
        ex.response_body = body
        ex.response_bytes = len(body)
        return Reply(status, body, list(headers))

    return fallback


def make_view(cfg: auth.AuthConfig | None, show_secrets: bool) -> Callable[[Exchange], tuple[Any, Any]]:
    """(request, reply) bodies fit for printing: JSON as data, anything else as text; masked."""
    secrets = cfg.secret_values() if cfg is not None else []

    def text(raw: bytes) -> str | None:
        if not raw:
            return None
        s = raw.decode("utf-8", "replace")
        return s if show_secrets else redact.scrub_text(s, secrets)

    def view(ex: Exchange) -> tuple[Any, Any]:
        req: Any = ex.payload if ex.payload is not None else text(ex.body)
        reply: Any = ex.response_json()
        if reply is None:
            reply = text(ex.response_body)
        if show_secrets:
            return req, reply
        if isinstance(req, (dict, list)):
            req = _scrub_data(redact.redact_payload(req), secrets)
        if isinstance(reply, (dict, list)):
            reply = _scrub_data(redact.redact_payload(reply), secrets)
        return req, reply

    return view


def _scrub_data(data: Any, secrets: list[str]) -> Any:
    """Also mask configured secret values that appear anywhere in a JSON tree."""
    if not secrets:
        return data
    dumped = json.dumps(data, ensure_ascii=False)
    scrubbed = redact.scrub_text(dumped, secrets)
    return data if scrubbed == dumped else json.loads(scrubbed)
