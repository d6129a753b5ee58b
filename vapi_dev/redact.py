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


class HeaderRedactor:
    """Masks secret headers and scrubs known secret values; built once per configuration and reused.

    Which names are secret is cached per name (bounded), and the forms of each secret value are
    computed once, so the common header, neither secret nor containing a secret, costs a dict lookup.
    """

    CACHE_LIMIT = 1024  # distinct header names remembered (bounded against hostile clients)

    def __init__(self, extra_secrets: Sequence[str] = (), extra_names: Sequence[str] = ()) -> None:
        self._variants = _variants(extra_secrets)
        self._names = tuple(extra_names)
        self._verdicts: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        verdict = self._verdicts.get(name)
        if verdict is None:
            verdict = is_secret_header(name, self._names)
            if len(self._verdicts) >= self.CACHE_LIMIT:
                self._verdicts.clear()
            self._verdicts[name] = verdict
        return verdict

    def __call__(self, headers: Headers) -> Headers:
        """``headers`` with secrets masked; the same list object when nothing needed masking."""
        out: Headers | None = None
        for i, (name, value) in enumerate(headers):
            if self.is_secret(name):
                new = _mask_header_value(value)
            elif self._variants and any(v in value for v in self._variants):
                new = _scrub(value, self._variants)
            else:
                continue
            if new != value:
                if out is None:
                    out = list(headers)
                out[i] = (name, new)
        return headers if out is None else out


def redact_headers(headers: Headers, extra_secrets: Sequence[str] = (), *, extra_names: Sequence[str] = ()) -> Headers:
    """A copy of ``headers`` with secret headers masked and known secret values scrubbed.

    ``extra_secrets`` are secret *values* (e.g. ``AuthConfig.secret_values()``) scrubbed from every
    other header; ``extra_names`` are additional secret header *names* (the configured bearer
    header and HMAC signature header).
    """
    return list(HeaderRedactor(extra_secrets, extra_names)(headers))


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


def _variants(secrets: Sequence[str]) -> tuple[str, ...]:
    """Every form of each secret looked for (as is, JSON-escaped), longest first so that a secret
    containing another is replaced whole."""
    forms: set[str] = set()
    for s in secrets:
        if s:
            forms.update((s, json.dumps(s, ensure_ascii=False)[1:-1], json.dumps(s)[1:-1]))
    return tuple(sorted(forms, key=len, reverse=True))


def _scrub(text: str, variants: tuple[str, ...]) -> str:
    for v in variants:
        if v in text:
            text = text.replace(v, MASK)
    return text


def scrub_text(text: str, secrets: Sequence[str]) -> str:
    """Replace every occurrence of each known secret value (also in its JSON-escaped form)."""
    return _scrub(text, _variants(secrets))


# -- messages from third parties (the ngrok agent, the Vapi API, HTTP libraries) -------------------

SHORT_MASK = "***"  # in one-line error messages, where the long mask would swamp the sentence

# Phrases the ngrok agent puts around an echoed token, plus anything that looks like one after a flag.
_TOKEN_PATTERNS = (
    re.compile(r"(authtoken[\"']?\s*[:=]?\s*)[A-Za-z0-9_\-]{8,}", re.IGNORECASE),
    re.compile(r"(--authtoken[ =])\S+"),
)


def mask_secrets(text: str, secrets: Sequence[str | None]) -> str:
    """Mask every given secret value in a third party's message with SHORT_MASK."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, SHORT_MASK)
    return text


def mask_tokens(text: str, secrets: Sequence[str | None]) -> str:
    """mask_secrets, and anything that looks like an echoed ngrok token."""
    text = mask_secrets(text, secrets)
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub(r"\1" + SHORT_MASK, text)
    return text
