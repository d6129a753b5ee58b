"""``--json``: the NDJSON writer and the record of one exchange."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from typing import Any, TextIO

from vapi_dev.exchange import Event, Exchange, Finished, Notice, Pending, Ready, TunnelChanged
from vapi_dev.output.lines import Redactor
from vapi_dev.output.threaded import ThreadedSink
from vapi_dev.vapi.messages import raw_type
from vapi_dev.vapi.summary import summarize


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def exchange_record(ex: Exchange, redact: Redactor | None = None) -> dict[str, Any]:
    ms = ex.duration_ms
    rec: dict[str, Any] = {
        "event": "exchange",
        "id": ex.id,
        "received_at": _iso(ex.received_at),
        "method": ex.method,
        "path": ex.path,
        "query": ex.query,
        "message_type": raw_type(ex),
        "call_id": ex.call_id,
        "reply_needed": ex.reply_needed,
        "deadline_s": ex.deadline_s,
        "forward_url": ex.forward_url,
        "status": ex.status,
        "duration_ms": round(ms, 3) if ms is not None else None,
        "request_bytes": ex.request_bytes,
        "response_bytes": ex.response_bytes,
        "error": ex.error,
        "error_kind": ex.error_kind,
        "fallback": ex.fallback,
        "auth": ex.auth.to_json() if ex.auth else None,
        "problems": [p.to_json() for p in ex.problems],
        "summary": summarize(ex) if ex.message_type else "",
    }
    if redact is not None:
        rec["request_body"], rec["response_body"] = redact(ex)
    return rec


class NdjsonSink(ThreadedSink):
    """``--json``: one JSON object per line on ``stream`` (ready, exchange, pending, tunnel, notice)."""

    def __init__(self, stream: TextIO, redact: Redactor | None = None) -> None:
        self.stream = stream
        self.redact = redact
        super().__init__("vapi-dev-ndjson")

    def handle_batch(self, batch: list[Event]) -> None:
        lines = []
        for event in batch:
            rec = self.record(event)
            if rec is not None:
                lines.append(json.dumps(rec, ensure_ascii=False, default=str))
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def record(self, event: Event) -> dict[str, Any] | None:
        if isinstance(event, Finished):
            return exchange_record(event.exchange, self.redact)
        if isinstance(event, Ready):
            return {
                "event": "ready",
                "local_url": event.local_url,
                "public_url": event.public_url,
                "forward_to": event.forward_to,
                "tunnel": event.tunnel,
                "inspect_url": event.inspect_url,
                "note": event.note,
            }
        if isinstance(event, TunnelChanged):
            return {"event": "tunnel", "up": event.up, "public_url": event.public_url, "reason": event.reason}
        if isinstance(event, Pending):
            ex = event.exchange
            return {
                "event": "pending",
                "id": ex.id,
                "message_type": raw_type(ex),
                "call_id": ex.call_id,
                "deadline_s": ex.deadline_s,
            }
        if isinstance(event, Notice):
            return {"event": "notice", "level": event.level, "text": event.text}
        return None

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
