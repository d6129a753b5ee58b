"""Masking of secrets in headers, JSON payloads and free text before anything is shown or stored."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

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
        self._variants = secret_forms(extra_secrets)
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
    """True for names that hold credentials, as JSON keys, query-string parameters or form fields
    (twilioAuthToken, apiKey, clientSecret, access_token, X-Amz-Signature, …)."""
    k = _norm_key(key)
    if not k:
        return False
    if any(f in k for f in ("secret", "password", "passwd", "passphrase", "apikey", "privatekey")):
        return True
    if k in ("authorization", "cookie", "auth", "sig", "pwd") or k.endswith("signature"):
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

    Only strings are masked so counters such as ``promptTokens: 12`` stay visible. Recursive: a tree
    nested deeper than Python's recursion limit raises RecursionError (callers fall back to text).
    """
    if isinstance(obj, dict):
        return {
            k: (_mask_strings(v) if isinstance(k, str) and is_secret_key(k) else redact_payload(v))
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [redact_payload(v) for v in obj]
    return obj


def secret_forms(secrets: Sequence[str]) -> tuple[str, ...]:
    """Every form of each secret looked for (as is, JSON-escaped, URL-encoded), longest first so that a
    secret containing another is replaced whole."""
    forms: set[str] = set()
    for s in secrets:
        if s:
            forms.update(
                (s, json.dumps(s, ensure_ascii=False)[1:-1], json.dumps(s)[1:-1], quote(s, safe=""), quote_plus(s))
            )
    return tuple(sorted(forms, key=len, reverse=True))


def _scrub(text: str, variants: tuple[str, ...]) -> str:
    for v in variants:
        if v in text:
            text = text.replace(v, MASK)
    return text


def scrub_text(text: str, secrets: Sequence[str]) -> str:
    """Replace every occurrence of each known secret value (also in its JSON-escaped form)."""
    return _scrub(text, secret_forms(secrets))


# -- the rules every output shares ------------------------------------------------------------------

# "name": "value" in JSON text that could not be parsed (cut, too deep, not quite JSON).
_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.){1,100})"(\s*:\s*)"((?:[^"\\]|\\.)*)"')
# name=value at the start, or after ? or & (query strings, URLs in messages, form bodies).
_PARAM = re.compile(r"(^|[?&])([^=&#?\s\"'<>]{1,100})=([^&#\s\"'<>]*)")
_BEARER = re.compile(r"(\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE)


_MASK_START = MASK[:4]  # a value already masked is left alone, so masking twice changes nothing


def _mask_pair(m: re.Match[str]) -> str:
    keep = not m[3] or m[3].startswith(_MASK_START) or not is_secret_key(m[1])
    return m[0] if keep else f'"{m[1]}"{m[2]}"{MASK}"'


def _mask_param(m: re.Match[str]) -> str:
    keep = not m[3] or m[3].startswith(_MASK_START) or not is_secret_key(unquote_plus(m[2]))
    return m[0] if keep else f"{m[1]}{m[2]}={MASK}"


class Masker:
    """The masking every output applies — stream lines and summaries, ``-v`` bodies, NDJSON, events,
    show, export, replay, trigger — for one configuration: secret header names, credential-like names
    (JSON keys, query parameters, form fields), bearer tokens in text, and the configured secret values.

    ``enabled=False`` (``--show-secrets``, ``export --raw``) returns everything as it is.
    """

    def __init__(self, secrets: Sequence[str] = (), names: Sequence[str] = (), *, enabled: bool = True) -> None:
        self.enabled = enabled
        self._variants = secret_forms(secrets)
        self._headers = HeaderRedactor(secrets, names)

    def headers(self, headers: Headers) -> Headers:
        return list(self._headers(headers)) if self.enabled else list(headers)

    def text(self, text: str) -> str:
        """Free text (a query string, URL, error message, summary, a body that is not JSON) masked."""
        if not self.enabled or not text:
            return text
        if self._variants:
            text = _scrub(text, self._variants)
        if '"' in text:
            text = _JSON_PAIR.sub(_mask_pair, text)
        if "=" in text:
            text = _PARAM.sub(_mask_param, text)
        if "earer" in text or "EARER" in text:
            text = _BEARER.sub(r"\1" + MASK, text)
        return text

    def data(self, obj: Any) -> Any:
        """A parsed JSON value with credential-like fields masked and every string masked as text.

        Raises RecursionError for a tree nested too deeply; callers show the masked raw text instead.
        """
        return self._walk(redact_payload(obj)) if self.enabled else obj

    def _walk(self, obj: Any) -> Any:
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {(self.text(k) if isinstance(k, str) else k): self._walk(v) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._walk(v) for v in obj]
        return obj

    def body(self, raw: bytes) -> tuple[Any, bool]:
        """(view, is_json): a body's JSON value masked, or its text masked (JSON that cannot be parsed or
        walked — cut, or nested too deeply — is masked as text)."""
        try:
            return self.data(json.loads(raw)), True
        except (ValueError, UnicodeDecodeError, RecursionError):
            return self.text(raw.decode("utf-8", "replace")), False


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
