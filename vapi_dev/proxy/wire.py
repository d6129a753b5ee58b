"""HTTP/1.1 wire pieces shared by the receiver's server and the forwarder's client: hop-by-hop
filtering, reason phrases, head encoding, and Reply (an answer vapi-dev makes itself)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus

from vapi_dev.exchange import Headers

# RFC 9110 §7.6.1 connection-specific headers, plus the framing headers that are recomputed per hop.
HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Content-Length",
        "Host",
    )
)
NO_BODY_STATUSES = frozenset({204, 304})
_REASONS = {s.value: s.phrase for s in HTTPStatus}


def reason_for(status: int) -> str:
    return _REASONS.get(status, "Unknown")


def filter_headers(headers: Headers, drop: frozenset[str] = HOP_BY_HOP) -> Headers:
    """``headers`` without hop-by-hop ones (including those named in Connection), order kept."""
    extra: set[str] | None = None
    for k, v in headers:
        if k.lower() == "connection":
            if extra is None:
                extra = set()
            extra.update(t.strip().lower() for t in v.split(","))
    if extra is None:
        return [(k, v) for k, v in headers if k.lower() not in drop]
    return [(k, v) for k, v in headers if k.lower() not in drop and k.lower() not in extra]


def encode_head(first_line: str, headers: Headers, extra: str = "") -> bytes:
    """A request or status line, the headers and the blank line, as bytes (latin-1, as received)."""
    lines = [first_line]
    lines.extend(f"{k}: {v}" for k, v in headers)
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1")


@dataclass
class Reply:
    """A whole reply made by vapi-dev itself (an error, the ping answer, a fallback)."""

    status: int
    body: bytes = b""
    headers: Headers = field(default_factory=list)
    reason: str | None = None  # None: the standard phrase for the status


def json_reply(status: int, data: object) -> Reply:
    body = json.dumps(data).encode()
    return Reply(status, body, [("Content-Type", "application/json; charset=utf-8")])


def json_error(status: int, error: str, detail: str) -> Reply:
    return json_reply(status, {"error": error, "detail": detail, "source": "vapi-dev"})
