"""Verifying Vapi's server-URL credentials (X-Vapi-Secret, bearer, HMAC) and signing test requests."""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import re
import time
from dataclasses import dataclass

from vapi_dev.errors import ExitStatus, VapiDevError
from vapi_dev.exchange import AuthResult, Headers, header

ALGORITHMS = ("sha256", "sha512", "sha1")
ENCODINGS = ("hex", "base64")
SECRET_HEADER = "X-Vapi-Secret"
_PLACEHOLDER = re.compile(r"\{(timestamp|body|method|url)\}")


class AuthConfigError(VapiDevError):
    """The auth options cannot work (unknown algorithm, secret not base64, …)."""

    exit_status = ExitStatus.USAGE


DEFAULT_MAX_SKEW_S = 300.0  # a signed request older (or newer) than this may be a replay
_MS_THRESHOLD = 100_000_000_000  # timestamps above this are epoch milliseconds (the unit is undocumented)


@dataclass(frozen=True)
class AuthConfig:
    """What Vapi is configured to send; mirrors the dashboard's credential settings."""

    secret: str | None = None  # X-Vapi-Secret
    bearer: str | None = None
    auth_header: str = "Authorization"
    bearer_prefix: bool = True
    hmac_secret: str | None = None
    hmac_algorithm: str = "sha256"  # sha256 | sha512 | sha1
    hmac_signature_header: str = "x-signature"
    hmac_timestamp_header: str = "x-timestamp"
    hmac_payload_format: str = "{timestamp}.{body}"  # {timestamp} {body} {method} {url}
    hmac_encoding: str = "hex"  # hex | base64
    hmac_prefix: str = ""
    hmac_secret_is_base64: bool = False
    hmac_max_skew: float = DEFAULT_MAX_SKEW_S  # a signed timestamp further from now is refused; 0: no check
    enforce: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.secret or self.bearer or self.hmac_secret)

    @property
    def methods(self) -> list[str]:
        """Configured methods, in the order they are checked."""
        out = []
        if self.secret:
            out.append("secret")
        if self.bearer:
            out.append("bearer")
        if self.hmac_secret:
            out.append("hmac")
        return out

    def secret_values(self) -> list[str]:
        """Every configured secret, for output scrubbing."""
        return [s for s in (self.secret, self.bearer, self.hmac_secret) if s]

    def secret_header_names(self) -> list[str]:
        """Header names that carry a credential under this configuration, for redaction."""
        names = [SECRET_HEADER]
        if self.bearer:
            names.append(self.auth_header)
        if self.hmac_secret:
            names.append(self.hmac_signature_header)
        return names

    def validate(self) -> None:
        """Raise AuthConfigError when the options cannot work; call once at startup."""
        _algorithm(self)
        if self.hmac_encoding.lower() not in ENCODINGS:
            raise AuthConfigError(f"Unknown HMAC signature encoding '{self.hmac_encoding}'; use hex or base64.")
        if self.hmac_secret and self.hmac_secret_is_base64:
            _hmac_key(self)
        if self.bearer and not self.auth_header.strip():
            raise AuthConfigError("The bearer header name is empty; pass --auth-header NAME.")


def _algorithm(cfg: AuthConfig) -> str:
    algorithm = cfg.hmac_algorithm.lower()
    if algorithm not in ALGORITHMS:
        raise AuthConfigError(f"Unknown HMAC algorithm '{cfg.hmac_algorithm}'; use one of {', '.join(ALGORITHMS)}.")
    return algorithm


def _hmac_key(cfg: AuthConfig) -> bytes:
    secret = cfg.hmac_secret or ""
    if not cfg.hmac_secret_is_base64:
        return secret.encode()
    try:
        return base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        raise AuthConfigError(
            "The HMAC secret is not valid base64; drop the secret-is-base64 option or fix the secret."
        ) from None


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def signed_payload(cfg: AuthConfig, *, method: str, url: str, body: bytes, timestamp: str) -> bytes:
    """The bytes Vapi signs: the payload format with its placeholders filled in (body raw)."""
    parts: list[bytes] = []
    pos = 0
    fmt = cfg.hmac_payload_format
    # One pass over the format only, so a body containing "{timestamp}" is never substituted.
    for m in _PLACEHOLDER.finditer(fmt):
        parts.append(fmt[pos : m.start()].encode())
        key = m.group(1)
        if key == "body":
            parts.append(body)
        elif key == "timestamp":
            parts.append(timestamp.encode())
        elif key == "method":
            parts.append(method.upper().encode())
        else:
            parts.append(url.encode())
        pos = m.end()
    parts.append(fmt[pos:].encode())
    return b"".join(parts)


def compute_signature(cfg: AuthConfig, *, method: str, url: str, body: bytes, timestamp: str) -> str:
    """The signature header value (prefix included) Vapi would send for this request."""
    data = signed_payload(cfg, method=method, url=url, body=body, timestamp=timestamp)
    digest = hmac.new(_hmac_key(cfg), data, _algorithm(cfg)).digest()
    if cfg.hmac_encoding.lower() == "base64":
        encoded = base64.b64encode(digest).decode()
    else:
        encoded = digest.hex()
    return cfg.hmac_prefix + encoded


def _check_secret(cfg: AuthConfig, headers: Headers) -> str:
    got = header(headers, SECRET_HEADER)
    if got is None:
        return f"no {SECRET_HEADER} header (is the secret set on the assistant, phone number or tool?)"
    wanted = SECRET_HEADER.lower()
    if sum(1 for k, _ in headers if k.lower() == wanted) > 1:  # an app may read another one than we check
        return f"more than one {SECRET_HEADER} header"
    if not _same(got, cfg.secret or ""):
        return f"{SECRET_HEADER} does not match the configured secret"
    return ""


def _check_bearer(cfg: AuthConfig, headers: Headers) -> str:
    name = cfg.auth_header
    got = header(headers, name)
    if got is None:
        return f"no {name} header"
    has_prefix = got[:7].lower() == "bearer "
    if cfg.bearer_prefix:
        if not has_prefix:
            return f"{name} has no 'Bearer ' prefix (is the credential's bearer prefix turned off?)"
        got = got[7:].strip()
    if not _same(got, cfg.bearer or ""):
        hint = " (it starts with 'Bearer ', but the bearer prefix is configured off)"
        return f"{name} does not match the configured bearer token" + (
            hint if has_prefix and not cfg.bearer_prefix else ""
        )
    return ""


def _check_hmac(cfg: AuthConfig, *, method: str, url: str, headers: Headers, body: bytes) -> str:
    sig_name, ts_name = cfg.hmac_signature_header, cfg.hmac_timestamp_header
    got = header(headers, sig_name)
    if got is None:
        return f"no {sig_name} header"
    ts = header(headers, ts_name)
    if ts is None and "{timestamp}" in cfg.hmac_payload_format:
        return f"no {ts_name} header, but the payload format includes {{timestamp}}"
    if cfg.hmac_prefix and not got.startswith(cfg.hmac_prefix):
        return f"{sig_name} does not start with the prefix '{cfg.hmac_prefix}'"
    try:
        want = compute_signature(cfg, method=method, url=url, body=body, timestamp=ts or "")
    except AuthConfigError as e:  # bad base64 secret / unknown algorithm
        return e.message
    if cfg.hmac_encoding.lower() == "hex":
        same = _same(got.lower(), want.lower())
    else:
        same = _same(got, want)
    if not same:
        return (
            f"{sig_name} does not match HMAC-{cfg.hmac_algorithm.upper()} "
            f"({cfg.hmac_encoding}) of '{cfg.hmac_payload_format}'; check the secret, payload format"
            + (" and that {url} is the public URL" if "{url}" in cfg.hmac_payload_format else "")
        )
    if cfg.hmac_max_skew > 0 and "{timestamp}" in cfg.hmac_payload_format:
        return _check_skew(ts_name, ts or "", cfg.hmac_max_skew, time.time())
    return ""


def _check_skew(name: str, ts: str, max_skew: float, now: float) -> str:
    """A signed timestamp too far from now is a replayed (or badly delayed) request."""
    try:
        value = float(ts.strip())
    except ValueError:
        return f"{name} is not a number"
    if not math.isfinite(value):
        return f"{name} is not a number"
    seconds = value / 1000 if abs(value) >= _MS_THRESHOLD else value
    off = seconds - now
    if abs(off) > max_skew:
        when = "old" if off < 0 else "in the future"
        return (
            f"{name} is {abs(off):.0f} s {when}, more than {max_skew:g} s: a replayed or delayed request? "
            "(--hmac-max-skew sets the window, 0 turns the check off)"
        )
    return ""


def verify(cfg: AuthConfig, *, method: str, url: str, headers: Headers, body: bytes) -> AuthResult | None:
    """Check every configured method against a request; None when no auth is configured.

    ``url`` must be the public URL Vapi called (tunnel URL + path + query), used for ``{url}``.
    All configured methods must pass; reasons never contain a secret or a received value.
    """
    if not cfg.enabled:
        return None
    reasons: list[str] = []
    if cfg.secret:
        reasons.append(_check_secret(cfg, headers))
    if cfg.bearer:
        reasons.append(_check_bearer(cfg, headers))
    if cfg.hmac_secret:
        reasons.append(_check_hmac(cfg, method=method, url=url, headers=headers, body=body))
    failed = [r for r in reasons if r]
    return AuthResult(method="+".join(cfg.methods), ok=not failed, reason="; ".join(failed))


def sign(cfg: AuthConfig, *, method: str, url: str, body: bytes, timestamp: int | None = None) -> Headers:
    """Headers Vapi would add to this request (for trigger and replay).

    ``timestamp`` defaults to the current time in seconds; verify() accepts whatever unit was
    sent, since the timestamp is signed as the exact header string.
    """
    out: Headers = []
    if cfg.secret:
        out.append((SECRET_HEADER, cfg.secret))
    if cfg.bearer:
        out.append((cfg.auth_header, ("Bearer " if cfg.bearer_prefix else "") + cfg.bearer))
    if cfg.hmac_secret:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = compute_signature(cfg, method=method, url=url, body=body, timestamp=ts)
        out.append((cfg.hmac_signature_header, sig))
        out.append((cfg.hmac_timestamp_header, ts))
    return out
