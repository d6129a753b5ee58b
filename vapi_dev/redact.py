"""Masking of secrets in headers, JSON payloads and free text before anything is shown or stored."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from vapi_dev.exchange import Headers

MASK = "•••• (redacted)"

# Header names whose value is a credential or a signature. x-timestamp is deliberately absent:
# it is signed, not secret, and seeing it helps debug HMAC mismatches.
SECRET_HEADERS = frozenset(
    {
        "x-vapi-secret",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-signature",
    }
)

# Name fragments that mark a custom header as secret (server.headers may carry anything):
# X-Api-Key, X-Vapi-Signature, X-Webhook-Secret, X-Auth-Token …
_SECRET_HEADER_FRAGMENTS = ("secret", "token", "signature", "apikey", "api-key", "api_key", "password")

# Authorization schemes kept visible, because "was the Bearer prefix sent?" is a real question
# when debugging Vapi's bearer credential (prefix on/off).
_SCHEMES = ("bearer ", "basic ", "token ")


def is_secret_header(name: str, extra_names: Sequence[str] = ()) -> bool:
    """True when a header with this name carries a credential or signature."""
    low = name.strip().lower()
    if low in SECRET_HEADERS or low in {n.strip().lower() for n in extra_names}:
        return True
    if low.endswith("timestamp"):
        return False
    return any(f in low for f in _SECRET_HEADER_FRAGMENTS)


def _mask_header_value(value: str) -> str:
    low = value.lower()
    for scheme in _SCHEMES:
        if low.startswith(scheme) and len(value) > len(scheme):
            return value[: len(scheme)] + MASK
    return MASK


def redact_headers(
    headers: Headers, extra_secrets: Sequence[str] = (), *, extra_names: Sequence[str] = ()
) -> Headers:
    """A copy of ``headers`` with secret headers masked and known secret values scrubbed.

    ``extra_secrets`` are secret *values* (e.g. ``AuthConfig.secret_values()``) scrubbed from every
    other header; ``extra_names`` are additional secret header *names* (the configured bearer
    header and HMAC signature header).
    """
    out: Headers = []
    for name, value in headers:
        if is_secret_header(name, extra_names):
            out.append((name, _mask_header_value(value)))
        else:
            out.append((name, scrub_text(value, extra_secrets)))
    return out


def _norm_key(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


def is_secret_key(key: str) -> bool:
    """True for JSON keys that hold credentials (twilioAuthToken, apiKey, clientSecret, …)."""
    k = _norm_key(key)
    if not k:
        return False
    if any(f in k for f in ("secret", "password", "passwd", "apikey", "privatekey")):
        return True
    if k in ("authorization", "cookie", "signature"):
        return True
    # authToken, accessToken, refreshToken, token — but not promptTokens / tokenizer / tokenUrl.
    if k.endswith("token"):
        return True
    # credential / credentials hold secrets; credentialId / credentialIds only name them.
    return "credential" in k and not k.endswith(("id", "ids"))


def _mask_strings(value: Any) -> Any:
    """Under a secret key: strings are masked, lists masked element-wise, objects walked normally."""
    if isinstance(value, str):
        return MASK if value else value
    if isinstance(value, list):
        return [_mask_strings(v) for v in value]
    return redact_payload(value)


def redact_payload(obj: Any) -> Any:
    """A deep copy of a parsed JSON value with string values under credential-like keys masked.

    Only strings are masked so counters such as ``promptTokens: 12`` stay visible.
    """
    if isinstance(obj, dict):
        return {
            k: (_mask_strings(v) if isinstance(k, str) and is_secret_key(k) else redact_payload(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact_payload(v) for v in obj]
    return obj


def scrub_text(text: str, secrets: Sequence[str]) -> str:
    """Replace every occurrence of each known secret value (also in its JSON-escaped form)."""
    variants: set[str] = set()
    for s in secrets:
        if not s:
            continue
        variants.add(s)
        escaped = json.dumps(s, ensure_ascii=False)[1:-1]
        variants.add(escaped)
        variants.add(json.dumps(s)[1:-1])
    # Longest first, so a secret that contains another is replaced whole.
    for v in sorted(variants, key=len, reverse=True):
        if v in text:
            text = text.replace(v, MASK)
    return text
