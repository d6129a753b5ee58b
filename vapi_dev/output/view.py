"""Printable views of exchange bodies: JSON as data, anything else as text, with secrets masked."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from vapi_dev import redact
from vapi_dev.exchange import Exchange
from vapi_dev.vapi.auth import AuthConfig


def make_view(cfg: AuthConfig | None, show_secrets: bool) -> Callable[[Exchange], tuple[Any, Any]]:
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
