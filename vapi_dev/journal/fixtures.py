"""The fixture format: captured traffic (written by `export`) that `trigger --file` and `replay` send again.

A fixture is ``{"version": 1, "call_id": …, "exchanges": [{…request…, "reply": {…}}]}``; a bare Vapi
payload (``{"message": {…}}``) is read as one request too. Bodies are kept as JSON when that gives the exact
bytes back, else as base64, so a re-sent request is byte for byte the recorded one.

A masked fixture (``"masked": true``, what export writes by default) has credential-like fields, secret
query parameters and known secret values replaced by the mask: a body that needed masking is kept as its
masked JSON (or masked text, as base64), no longer the exact bytes, and is sent again as such (re-signed
when the sender has the credentials, since secret headers are never kept).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vapi_dev.exchange import Exchange, Headers
from vapi_dev.redact import Masker
from vapi_dev.vapi.messages import raw_type
from vapi_dev.vapi.samples import SampleError

FIXTURE_VERSION = 1
# Never re-sent: hop-by-hop, or recomputed by the HTTP client for the new connection.
_UNSENT_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "proxy-connection",
        "proxy-authorization",
        "accept-encoding",
    }
)


@dataclass(frozen=True)
class Request:
    """One request to send again: the recorded method, path, query, headers and exact body."""

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    label: str = ""  # message type or a short description, for output


def resend_headers(headers: Headers, mask: str, drop: Iterable[str] = ()) -> Headers:
    """Recorded headers worth sending again: no masked secrets, no hop-by-hop, none in ``drop``."""
    dropped = _UNSENT_HEADERS | {d.lower() for d in drop}
    return [(k, v) for k, v in headers if k.lower() not in dropped and mask not in v]


def masked_headers(reqs: Iterable[Request], mask: str) -> list[str]:
    """Names of the headers the requests kept only masked (their credentials, as export writes them): they are
    not sent again, so the sender must sign the requests again (or they fail authentication)."""
    seen: dict[str, str] = {}
    for req in reqs:
        for k, v in req.headers:
            if mask in v:
                seen.setdefault(k.lower(), k)
    return list(seen.values())


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def encode_body(body: bytes, prefix: str = "body") -> dict[str, Any]:
    """``{prefix}_json`` when re-serialising gives the exact bytes back, else ``{prefix}_base64``."""
    try:
        parsed = json.loads(body)
        if _compact(parsed) == body:
            return {f"{prefix}_json": parsed}
    except (ValueError, UnicodeDecodeError, RecursionError):  # not JSON, or nested too deeply for json
        pass
    return {f"{prefix}_base64": base64.b64encode(body).decode()}


def masked_body(body: bytes, mask: Masker, prefix: str = "body") -> dict[str, Any]:
    """``encode_body`` of ``body`` when masking changes nothing, else of what ``mask`` leaves of it: its JSON
    value masked (``{prefix}_json``), or its text masked (``{prefix}_base64``)."""
    view, is_json = mask.body(body)
    if is_json:
        try:
            if view == json.loads(body):
                return encode_body(body, prefix)
            return {f"{prefix}_json": view}
        except RecursionError:  # pragma: no cover - mask.body only says JSON for a value it could walk
            pass
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return encode_body(body, prefix)  # binary: nothing a text rule could find
    masked = mask.text(text).encode()
    return encode_body(body if masked == body else masked, prefix)


def decode_body(item: dict[str, Any], prefix: str = "body") -> bytes:
    if isinstance(item.get(f"{prefix}_base64"), str):
        return base64.b64decode(item[f"{prefix}_base64"])
    if f"{prefix}_json" in item:
        return _compact(item[f"{prefix}_json"])
    return b""


def fixture(call_id: str, exchanges: Iterable[Exchange], mask: Masker | None = None) -> dict[str, Any]:
    """A call's exchanges as a JSON-able fixture (headers as stored, i.e. masked); with ``mask`` (enabled)
    a masked fixture: bodies, query strings, errors and headers masked by it."""
    on = mask is not None and mask.enabled
    m = mask if mask is not None else Masker(enabled=False)

    def body(raw: bytes, prefix: str = "body") -> dict[str, Any]:
        return masked_body(raw, m, prefix) if on else encode_body(raw, prefix)

    items = []
    for ex in exchanges:
        error = m.text(ex.error) if ex.error else ex.error
        reply: dict[str, Any] = {"status": ex.status, "duration_ms": ex.duration_ms, "error": error}
        reply.update(body(ex.response_body))
        items.append(
            {
                "id": ex.id,
                "received_at": ex.received_at,
                "method": ex.method,
                "path": m.text(ex.path),
                "query": m.text(ex.query),
                "message_type": raw_type(ex),
                "headers": [[k, v] for k, v in m.headers(ex.headers)],
                **body(ex.body),
                "reply": reply,
            }
        )
    out: dict[str, Any] = {"version": FIXTURE_VERSION, "call_id": call_id}
    if on:
        out["masked"] = True
    out["exchanges"] = items
    return out


def load_requests(raw: bytes, source: str = "the file") -> list[Request]:
    """Requests from a fixture (every exchange, in order) or from a plain Vapi payload (sent as is)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SampleError(f"{source} is not JSON ({exc}); pass a Vapi payload or an export fixture.") from exc
    return requests_of(data, raw, source)


def requests_of(data: Any, raw: bytes, source: str = "the file") -> list[Request]:
    """``load_requests`` of a file already parsed: ``data`` is ``raw`` parsed (a payload is sent as ``raw``)."""
    if isinstance(data, dict) and isinstance(data.get("exchanges"), list):
        if data.get("version") != FIXTURE_VERSION:
            raise SampleError(f"{source} is a fixture of version {data.get('version')!r}; expected 1.")
        out = []
        for n, item in enumerate(data["exchanges"]):
            if not isinstance(item, dict):
                raise SampleError(f"{source}: exchange {n} is not an object.")
            try:
                headers = [(str(k), str(v)) for k, v in item.get("headers", [])]
                out.append(
                    Request(
                        str(item.get("method", "POST")),
                        str(item.get("path", "/")),
                        str(item.get("query", "")),
                        headers,
                        decode_body(item),
                        str(item.get("message_type") or ""),
                    )
                )
            except (TypeError, ValueError) as exc:
                raise SampleError(f"{source}: exchange {n} is malformed ({exc}).") from exc
        return out
    if isinstance(data, dict) and isinstance(data.get("message"), dict):
        label = str(data["message"].get("type", ""))
        return [Request("POST", "/", "", [("Content-Type", "application/json")], raw, label)]
    raise SampleError(f'{source} is neither a Vapi payload ({{"message": …}}) nor an export fixture.')


def payload_request(payload: dict[str, Any]) -> Request:
    """A sample payload as a request, serialised compactly like Vapi does."""
    label = str(payload.get("message", {}).get("type", ""))
    return Request("POST", "/", "", [("Content-Type", "application/json")], _compact(payload), label)
