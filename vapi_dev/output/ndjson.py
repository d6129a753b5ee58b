"""``--json``: the NDJSON writer and the record of one exchange."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timezone
from typing import Any, TextIO

from vapi_dev.exchange import Event, Exchange, Finished, Notice, Pending, Ready, TunnelChanged
from vapi_dev.output.lines import DEFAULT_MASK, Redactor, printable
from vapi_dev.output.threaded import ThreadedSink
from vapi_dev.output.view import BodyView
from vapi_dev.redact import Masker
from vapi_dev.vapi.messages import raw_type
from vapi_dev.vapi.summary import summarize

FALLBACK_BODY_LIMIT = 2000  # characters of a body kept when its record could not be written whole


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds")


def exchange_record(ex: Exchange, redact: Redactor | None = None, mask: Masker | None = None) -> dict[str, Any]:
    """The NDJSON record of an exchange; with ``redact``, its bodies too. Everything quoted from the request
    or the reply (path, query, target URL, summary, error, problems) is masked by ``mask`` (default: the
    Masker of ``redact`` when it is a BodyView, else the name rules)."""
    m = mask or (redact.mask if isinstance(redact, BodyView) else DEFAULT_MASK)
    ms = ex.duration_ms
    rec: dict[str, Any] = {
        "event": "exchange",
        "id": ex.id,
        "received_at": _iso(ex.received_at),
        "method": ex.method,
        "path": m.text(ex.path),
        "query": m.text(ex.query),
        "message_type": raw_type(ex),
        "call_id": ex.call_id,
        "reply_needed": ex.reply_needed,
        "deadline_s": ex.deadline_s,
        "forward_url": m.text(ex.forward_url),
        "status": ex.status,
        "duration_ms": round(ms, 3) if ms is not None else None,
        "request_bytes": ex.request_bytes,
        "request_truncated": ex.request_truncated,
        "response_bytes": ex.response_bytes,
        "response_truncated": ex.response_truncated,
        "error": m.text(ex.error) if ex.error else ex.error,
        "error_kind": ex.error_kind,
        "fallback": ex.fallback,
        "auth": ex.auth.to_json() if ex.auth else None,
        "problems": [p.to_json() | {"message": m.text(p.message)} for p in ex.problems],
        "summary": summarize(ex, m) if ex.message_type else "",
    }
    if redact is not None:
        rec["request_body"], rec["response_body"] = redact(ex)
    return rec


def _text_body(raw: bytes, mask: Masker) -> str | None:
    """A body as masked text, shortened, control characters escaped: what a record falls back to."""
    if not raw:
        return None
    # masked whole, then shortened: a secret cut in half would no longer be recognised
    return printable(mask.text(raw.decode("utf-8", "replace")), FALLBACK_BODY_LIMIT)


class NdjsonSink(ThreadedSink):
    """``--json``: one JSON object per line on ``stream`` (ready, exchange, pending, tunnel, notice)."""

    def __init__(self, stream: TextIO, redact: Redactor | None = None, *, mask: Masker | None = None) -> None:
        """``redact`` (``-v``) adds the bodies; ``mask`` masks the records (default: ``redact``'s Masker, else
        the name rules alone; pass the run's Masker so configured secret values are masked without -v too)."""
        self.stream = stream
        self.redact = redact
        self.mask = mask or (redact.mask if isinstance(redact, BodyView) else DEFAULT_MASK)
        super().__init__("vapi-dev-ndjson")

    def handle_batch(self, batch: list[Event]) -> None:
        lines = []
        for event in batch:
            line = self._line(event)
            if line is not None:
                lines.append(line)
        if lines:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()

    def _line(self, event: Event) -> str | None:
        """One event's line; an exchange whose bodies cannot be written (too deep) keeps its line, with
        the bodies as shortened masked text and ``render_error`` saying why."""
        try:
            rec = self.record(event)
            return None if rec is None else json.dumps(rec, ensure_ascii=False, default=str)
        except Exception as exc:
            if not isinstance(event, Finished):
                return json.dumps(
                    {"event": "notice", "level": "error", "text": f"could not write an event ({type(exc).__name__})"}
                )
            ex = event.exchange
            try:
                rec = exchange_record(ex, None, self.mask)
            except Exception:
                rec = {"event": "exchange", "id": ex.id, "status": ex.status}
            if self.redact is not None:
                rec["request_body"] = _text_body(ex.body, self.mask)
                rec["response_body"] = _text_body(ex.response_body, self.mask)
            rec["render_error"] = type(exc).__name__
            return json.dumps(rec, ensure_ascii=False, default=str)

    def record(self, event: Event) -> dict[str, Any] | None:
        if isinstance(event, Finished):
            return exchange_record(event.exchange, self.redact, self.mask)
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
