"""One-line human summaries of Vapi messages (and what the app answered), for the stream and `events`.

Summaries quote what was sent (tool arguments, transcripts, replies), so every quoted value is masked
with the output's Masker before it is shortened: a secret cut in half would no longer be recognised.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple
from urllib.parse import urljoin, urlsplit, urlunsplit

from vapi_dev.exchange import Exchange, header
from vapi_dev.redact import MASK, Masker, is_secret_key
from vapi_dev.vapi.messages import as_dict, message_of, tool_calls

TOO_DEEP = "(nested too deeply to summarise)"
# reply-needed types whose summary says what the reply decided (tool calls have their own)
_SUMMARISED_REPLIES = frozenset(
    {"assistant-request", "transfer-destination-request", "handoff-destination-request", "knowledge-base-request"}
)
LOCATION_SHOWN = 60  # characters of a redirect's Location shown in an exchange line's status cell
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


class Redirect(NamedTuple):
    """Where a 3xx reply points."""

    shown: str  # origin-relative ("/api/webhook/") when it stays on the target's origin, else ``url``
    url: str  # absolute, resolved against the forward URL (the Location as sent when it cannot be)
    same_origin: bool


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def redirect_of(ex: Exchange) -> Redirect | None:
    """The redirect the app answered with (a 3xx with a Location), or None. Vapi does not follow it."""
    if ex.status is None or not 300 <= ex.status < 400 or ex.error or ex.fallback:
        return None
    location = (header(ex.response_headers, "location") or "").strip()
    if not location:
        return None
    if not ex.forward_url:
        return Redirect(location, location, False)
    try:  # a Location is anything the app sent: an unparseable one is shown as it came
        url = urljoin(ex.forward_url, location)
        same = _origin(url) == _origin(ex.forward_url)
        parts = urlsplit(url)
    except ValueError:
        return Redirect(location, location, False)
    shown = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment)) if same else url
    return Redirect(shown, url, same)


def redirect_shown(ex: Exchange, mask: Masker | None = None) -> str | None:
    """Where a redirect points, masked and shortened for an exchange line's status cell (not yet escaped:
    pass it through output.lines.printable), or None when the reply is no redirect."""
    moved = redirect_of(ex)
    return None if moved is None else _short(moved.shown, LOCATION_SHOWN, mask or _DEFAULT_MASK)


def _reply_of(ex: Exchange) -> dict[str, Any]:
    """The app's reply object when Vapi would read it: a 2xx (a failed or redirected reply is not one)."""
    if ex.error and not ex.fallback:  # the body is vapi-dev's own error reply, not the app's
        return {}
    if ex.status is not None and not 200 <= ex.status < 300:
        return {}
    body = ex.response_json()
    if isinstance(body, dict) and isinstance(body.get("messageResponse"), dict):
        return body["messageResponse"]  # type: ignore[no-any-return]
    return body if isinstance(body, dict) else {}


def _failed(ex: Exchange, mask: Masker) -> str | None:
    """``app failed (500): <its error>`` when the app answered 4xx/5xx itself, else None. Vapi treats such a
    reply as a failure whatever its body says (an assistant-request {"error"} is only spoken with a 2xx)."""
    if ex.status is None or ex.status < 400 or ex.error or ex.fallback:
        return None
    body = ex.response_json()
    error = body.get("error") if isinstance(body, dict) else None
    return f"app failed ({ex.status})" + (f": {_short(error, 50, mask)}" if error not in (None, "") else "")


def _outcome(reply: dict[str, Any], mask: Masker) -> str | None:
    """What one tool result (or a legacy function-call reply) says: its error when it has one, else its result."""
    error = reply.get("error")
    if error not in (None, ""):
        return "→ error " + _short(error, 40, mask)
    if "result" in reply:
        return "→ " + _short(reply["result"], 40, mask)
    return None


def _tool_summary(ex: Exchange, msg: dict[str, Any], mask: Masker) -> str:
    calls = tool_calls(ex.payload)
    reply = _reply_of(ex)
    results = reply.get("results")
    by_id: dict[str, str] = {}
    if isinstance(results, list):
        for r in results:
            out = _outcome(r, mask) if isinstance(r, dict) else None
            if out is not None:
                by_id[str(r.get("toolCallId", ""))] = out
    if msg.get("type") == "function-call":
        out = _outcome(reply, mask)
        if out is not None:
            by_id[""] = out
    parts = []
    for c in calls[:3]:
        part = f"{_short(c.name, 40, mask)}({_fmt_args(c.arguments, mask)})"
        if c.id in by_id:
            part += f" {by_id[c.id]}"
        parts.append(part)
    if len(calls) > 3:
        parts.append(f"+{len(calls) - 3} more")
    text = "; ".join(parts)
    if results is None and msg.get("type") != "function-call" and reply.get("error") not in (None, ""):
        text += " → error " + _short(reply["error"], 40, mask)  # one {"error"} answering every call
    failed = _failed(ex, mask)
    return f"{text} → {failed}" if failed else text


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
    if mtype in _SUMMARISED_REPLIES:
        failed = _failed(ex, mask)  # e.g. a 500 {"error"}: not a deliberate answer, Vapi counts a failure
        if failed:
            return failed
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
