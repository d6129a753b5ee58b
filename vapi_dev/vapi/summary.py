"""One-line human summaries of Vapi messages (and what the app answered), for the stream and `events`.

Summaries quote what was sent (tool arguments, transcripts, replies), so every quoted value is masked
with the output's Masker before it is shortened: a secret cut in half would no longer be recognised.
"""

from __future__ import annotations

import json
from typing import Any

from vapi_dev.exchange import Exchange
from vapi_dev.redact import MASK, Masker, is_secret_key
from vapi_dev.vapi.messages import as_dict, message_of, tool_calls

TOO_DEEP = "(nested too deeply to summarise)"
_DEFAULT_MASK = Masker()  # the name rules alone, for callers that know no configured secret


def _short(text: Any, limit: int = 60, mask: Masker = _DEFAULT_MASK) -> str:
    s = (
        mask.text(text)
        if isinstance(text, str)
        else json.dumps(mask.data(text), ensure_ascii=False, separators=(",", ":"))
    )
    s = " ".join(s.split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _fmt_args(args: Any, mask: Masker) -> str:
    if isinstance(args, dict):
        return ", ".join(
            f"{mask.text(str(k))}={MASK if mask.enabled and is_secret_key(str(k)) else _short(v, 24, mask)}"
            for k, v in args.items()
        )
    return _short(args, 40, mask)


def _reply_of(ex: Exchange) -> dict[str, Any]:
    if ex.error and not ex.fallback:  # the body is vapi-dev's own error reply, not the app's
        return {}
    body = ex.response_json()
    if isinstance(body, dict) and isinstance(body.get("messageResponse"), dict):
        return body["messageResponse"]  # type: ignore[no-any-return]
    return body if isinstance(body, dict) else {}


def _tool_summary(ex: Exchange, msg: dict[str, Any], mask: Masker) -> str:
    calls = tool_calls(ex.payload)
    results = _reply_of(ex).get("results")
    by_id: dict[str, Any] = {}
    if isinstance(results, list):
        for r in results:
            if isinstance(r, dict):
                by_id[str(r.get("toolCallId", ""))] = r.get("error", r.get("result"))
    if msg.get("type") == "function-call":
        by_id[""] = _reply_of(ex).get("result")
    parts = []
    for c in calls[:3]:
        out = f"{_short(c.name, 40, mask)}({_fmt_args(c.arguments, mask)})"
        if c.id in by_id:
            out += f" → {_short(by_id[c.id], 40, mask)}"
        parts.append(out)
    if len(calls) > 3:
        parts.append(f"+{len(calls) - 3} more")
    return "; ".join(parts)


def summarize(ex: Exchange, mask: Masker | None = None) -> str:
    """A short human summary of what the message says (and what the app answered), masked by ``mask``
    (default: the name rules). A message nested too deeply to walk gets a short placeholder."""
    m = mask or _DEFAULT_MASK
    try:
        return m.text(_summarize(ex, m))
    except RecursionError:
        return TOO_DEEP


def _summarize(ex: Exchange, mask: Masker) -> str:
    msg = message_of(ex.payload)
    mtype = ex.message_type or ""
    if mtype in ("tool-calls", "function-call"):
        return _tool_summary(ex, msg, mask)
    if mtype == "status-update":
        status = msg.get("status", "?")
        reason = msg.get("endedReason") or (as_dict(msg.get("call")).get("endedReason") if status == "ended" else None)
        return f"{status}" + (f" ({reason})" if reason else "")
    if mtype == "transcript":
        kind = msg.get("transcriptType", "final" if "final" in str(msg.get("type", "")) else "")
        return f'{msg.get("role", "?")}: "{_short(msg.get("transcript", ""), 70, mask)}"' + (
            " (partial)" if kind == "partial" else ""
        )
    if mtype == "speech-update":
        return f"{msg.get('role', '?')} {msg.get('status', '?')}"
    if mtype == "conversation-update":
        msgs = msg.get("messages")
        n = len(msgs) if isinstance(msgs, list) else 0
        return f"{n} messages"
    if mtype == "end-of-call-report":  # the full summary closes the call on its own line
        return str(msg.get("endedReason") or as_dict(msg.get("call")).get("endedReason") or "")
    if mtype == "assistant-request":
        reply = _reply_of(ex)
        for key in ("assistantId", "squadId", "workflowId"):
            if key in reply:
                return f"→ {key} {_short(reply[key], 40, mask)}"
        for key in ("assistant", "squad", "workflow"):
            if isinstance(reply.get(key), dict):
                name = reply[key].get("name")
                return f"→ transient {key}" + (f" {_short(name, 30, mask)}" if name else "")
        if "destination" in reply:
            return "→ transfer " + _short(reply["destination"], 50, mask)
        if "error" in reply:
            return "→ error " + _short(reply["error"], 50, mask)
        customer = as_dict(msg.get("customer"))
        return f"from {customer.get('number', '?')}"
    if mtype in ("transfer-destination-request", "handoff-destination-request"):
        dest = _reply_of(ex).get("destination")
        return "→ " + _short(dest, 60, mask) if dest else ""
    if mtype == "knowledge-base-request":
        docs = _reply_of(ex).get("documents")
        return f"→ {len(docs)} documents" if isinstance(docs, list) else ""
    if mtype == "user-interrupted":
        return "barge-in"
    if mtype == "model-output":
        return _short(msg.get("output", ""), 60, mask)
    if mtype == "language-change-detected":
        return str(msg.get("language", ""))
    if mtype == "hang":
        return "assistant stalled — slow model, voice or tool server?"
    return ""


def end_of_call_summary(msg: dict[str, Any]) -> str:
    """Ended reason, duration, cost and recording URL of an end-of-call-report."""
    call = as_dict(msg.get("call"))
    artifact = as_dict(msg.get("artifact"))
    parts = [str(msg.get("endedReason") or call.get("endedReason") or "ended")]
    duration = msg.get("durationSeconds")
    if duration is None:
        duration = _duration(msg.get("startedAt"), msg.get("endedAt"))
    if isinstance(duration, (int, float)):
        parts.append(f"{duration:.0f} s")
    cost = msg.get("cost")
    if isinstance(cost, (int, float)):
        parts.append(f"${cost:.2f}")
    rec = artifact.get("recordingUrl") or msg.get("recordingUrl")
    if isinstance(rec, str):
        parts.append(rec)
    return " · ".join(parts)


def _duration(start: Any, end: Any) -> float | None:
    from datetime import datetime

    if not (isinstance(start, str) and isinstance(end, str)):
        return None
    try:
        a = datetime.fromisoformat(start.replace("Z", "+00:00"))
        b = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (b - a).total_seconds()
