"""The fixture format: captured traffic (written by `export`) that `trigger --file` and `replay` send again.

A fixture is ``{"vapi_dev_fixture": 1, "call_id": …, "exchanges": [{"request": {…}, "reply": {…}}]}``; a
bare Vapi payload (``{"message": {…}}``) is read as one request too. Bodies are kept as JSON when that gives
the exact bytes back, else as base64, so a re-sent request is byte for byte the recorded one.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from vapi_dev.exchange import Exchange, Headers
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


def _compact(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def encode_body(body: bytes, prefix: str = "body") -> dict[str, Any]:
    """``{prefix}_json`` when re-serialising gives the exact bytes back, else ``{prefix}_base64``."""
    try:
        parsed = json.loads(body)
        if _compact(parsed) == body:
            return {f"{prefix}_json": parsed}
    except (ValueError, UnicodeDecodeError):
        pass
    return {f"{prefix}_base64": base64.b64encode(body).decode()}


def decode_body(item: dict[str, Any], prefix: str = "body") -> bytes:
    if isinstance(item.get(f"{prefix}_base64"), str):
        return base64.b64decode(item[f"{prefix}_base64"])
    if f"{prefix}_json" in item:
        return _compact(item[f"{prefix}_json"])
    return b""


def fixture(call_id: str, exchanges: Iterable[Exchange]) -> dict[str, Any]:
    """A call's exchanges as a JSON-able fixture (headers as stored, i.e. masked)."""
    items = []
    for ex in exchanges:
        reply: dict[str, Any] = {"status": ex.status, "duration_ms": ex.duration_ms, "error": ex.error}
        reply.update(encode_body(ex.response_body))
        items.append(
            {
                "id": ex.id,
                "received_at": ex.received_at,
                "method": ex.method,
                "path": ex.path,
                "query": ex.query,
                "message_type": raw_type(ex),
                "headers": [[k, v] for k, v in ex.headers],
                **encode_body(ex.body),
                "reply": reply,
            }
        )
    return {"version": FIXTURE_VERSION, "call_id": call_id, "exchanges": items}


def load_requests(raw: bytes, source: str = "the file") -> list[Request]:
    """Requests from a fixture (every exchange, in order) or from a plain Vapi payload (sent as is)."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SampleError(f"{source} is not JSON ({exc}); pass a Vapi payload or an export fixture.") from exc
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
