"""An Exchange factory built on the sample payloads, in the spirit of mitmproxy's test/tflow.py.

``make_exchange("tool-calls", {"results": [...]})`` is a finished tool call as the receiver would have
recorded it: the request is the sample payload of that type (vapi_dev.vapi.samples.sample), classified
like the receiver classifies it (call id, reply needed, deadline), and the app's reply is the JSON given.
"""

from __future__ import annotations

import json
from typing import Any

from vapi_dev.exchange import DEFAULT_DEADLINE_S, Exchange, Headers, parse_json
from vapi_dev.vapi.messages import normalise_type, read_message, type_info
from vapi_dev.vapi.samples import sample

JSON_HEADERS: Headers = [("Content-Type", "application/json")]

# Every exchange line of `vapi-dev listen --json` (and the NDJSON sink) carries at least these.
EXCHANGE_FIELDS = frozenset(
    {
        "id",
        "received_at",
        "method",
        "path",
        "message_type",
        "call_id",
        "status",
        "duration_ms",
        "request_bytes",
        "response_bytes",
        "error",
    }
)


def make_exchange(
    type: str | None = "tool-calls",
    reply: Any = None,
    *,
    status: int | None = 200,
    raw: bytes | None = None,
    payload: Any = None,
    body: bytes | None = None,
    call_id: str | None = None,
    method: str = "POST",
    path: str = "/",
    query: str = "",
    headers: Headers | None = None,
    response_headers: Headers | None = None,
    took_s: float | None = 0.1,
    first_byte_s: float | None = None,
    **fields: Any,
) -> Exchange:
    """An Exchange of Vapi message ``type`` (None: plain HTTP) and the app's ``reply``.

    Request: ``body`` as given (parsed for ``payload``), else ``payload`` (default: the sample of
    ``type`` for ``call_id``) serialised; ``headers`` default to a JSON Content-Type when there is a
    payload. Reply: ``raw`` bytes, else ``reply`` serialised; ``response_headers`` default to a JSON
    Content-Type when there is a reply body. ``status`` and ``took_s`` None: still waiting for the app.
    Any other Exchange field can be set by keyword (``forward_url=...``, ``problems=[...]``).
    """
    if body is None:
        if payload is None and type is not None:
            payload = sample(type, call_id)
        body = b"" if payload is None else json.dumps(payload).encode()
    elif payload is None:
        payload = parse_json(body)
    if headers is None:
        headers = list(JSON_HEADERS) if payload is not None else []
    ex = Exchange.begin(method, path, query, list(headers), body)
    info = type_info(type)
    ex.payload = payload
    ex.message_type = normalise_type(type) if type else None  # as the receiver stores it
    ex.call_id = call_id if call_id is not None else read_message(payload)[1]
    ex.reply_needed = info.reply_needed
    ex.deadline_s = info.deadline_s or DEFAULT_DEADLINE_S
    if raw is None and reply is not None:
        raw = json.dumps(reply).encode()
    ex.status = status
    ex.response_body = raw or b""
    ex.response_bytes = len(ex.response_body)
    if response_headers is None:
        response_headers = list(JSON_HEADERS) if ex.response_body else []
    ex.response_headers = list(response_headers)
    if first_byte_s is not None:
        ex.first_byte = ex.started + first_byte_s
    if took_s is not None:
        ex.finished = ex.started + took_s
    for name, value in fields.items():
        if not hasattr(ex, name):
            raise TypeError(f"Exchange has no field {name!r}")
        setattr(ex, name, value)
    return ex
