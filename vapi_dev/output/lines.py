"""How one exchange, a banner or a notice looks in the terminal: styles, line formats, helpers."""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rich.text import Text

from vapi_dev.exchange import Exchange, Ready
from vapi_dev.redact import Masker
from vapi_dev.vapi import messages as vapi
from vapi_dev.vapi.summary import end_of_call_summary, summarize

CATEGORY_STYLE = {
    "lifecycle": "blue",
    "conversation": "cyan",
    "reply": "bold magenta",
    "error": "bold red",
    "other": "white",
}
CALL_COLOURS = (
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "bright_green",
    "bright_yellow",
    "bright_blue",
    "bright_magenta",
    "bright_cyan",
)
NOTICE_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}
REPLY_MARK = "↩"  # Vapi waits for this reply

Redactor = Callable[[Exchange], tuple[Any, Any]]  # (request view, reply view) safe to print
DEFAULT_MASK = Masker()  # the name rules alone, for callers that know no configured secret


FIELD_LIMIT = 200  # characters of one untrusted field (type, path, summary) shown on a line

# C0 controls, DEL and C1 controls: anything that could move the cursor, retitle the window, ring, erase
# or start an escape sequence. Text from the network or the app is shown with these escaped.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(m: re.Match[str]) -> str:
    c = m.group()
    return _NAMED.get(c) or f"\\x{ord(c):02x}"


def printable(text: str, limit: int | None = FIELD_LIMIT) -> str:
    """``text`` safe for a terminal: cut to ``limit`` characters with an ellipsis (None: whole), and
    every control character shown escaped (``\\x1b``, ``\\n``)."""
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    return _CONTROL.sub(_escape, text)


_C1 = re.compile("[\x7f-\x9f]")


def printable_json(text: str) -> str:
    """JSON text (C0 already escaped by the encoder, newlines only as layout) with DEL and C1 escaped."""
    return _C1.sub(_escape, text) if _C1.search(text) else text


def printable_data(obj: Any) -> Any:
    """A JSON tree whose strings carry no DEL or C1 control (JSON escapes C0 itself, but not these)."""
    if isinstance(obj, str):
        return _C1.sub(_escape, obj) if _C1.search(obj) else obj
    if isinstance(obj, dict):
        return {printable_data(k): printable_data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [printable_data(v) for v in obj]
    return obj


def human_bytes(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB"):
        n_f = n / 1000.0
        if n_f < 1000 or unit == "GB":
            return f"{n_f:.1f} {unit}"
        n = int(n_f)
    return f"{n} B"  # pragma: no cover


def short_call(call_id: str | None) -> str:
    if not call_id:
        return "-"
    return call_id[:8]


def call_style(call_id: str | None) -> str:
    if not call_id:
        return "dim"
    return CALL_COLOURS[zlib.crc32(call_id.encode()) % len(CALL_COLOURS)]


def status_style(ex: Exchange) -> str:
    if ex.error or ex.status is None or ex.status >= 500:
        return "bold red"
    if ex.status >= 300:
        return "yellow"
    return "green"


def latency_style(ex: Exchange) -> str:
    ms = ex.duration_ms or 0.0
    ratio = ms / 1000.0 / ex.deadline_s if ex.deadline_s else 0.0
    if ratio >= 1.0:
        return "bold red"
    if ratio >= 0.7:
        return "yellow"
    return "green" if ex.reply_needed else "dim"


def truncate(obj: Any, *, items: int = 5, chars: int = 300, depth: int = 0) -> Any:
    """Shorten long arrays and strings for display (``--full`` skips this)."""
    if isinstance(obj, dict):
        return {k: truncate(v, items=items, chars=chars, depth=depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        head = [truncate(v, items=items, chars=chars, depth=depth + 1) for v in obj[:items]]
        if len(obj) > items:
            head.append(f"… {len(obj) - items} more items")
        return head
    if isinstance(obj, str) and len(obj) > chars:
        return obj[:chars] + f"… ({len(obj)} chars)"
    return obj


def is_chatty(ex: Exchange) -> bool:
    info = vapi.type_info(ex.message_type)
    if ex.message_type and ex.message_type.startswith("transcript"):
        msg = vapi.message_of(ex.payload)
        return msg.get("transcriptType") == "partial"
    return info.chatty and not ex.error and (ex.status or 0) < 400 and not ex.problems


def clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def exchange_line(ex: Exchange, mask: Masker = DEFAULT_MASK) -> Text:
    """The one-line view of a finished exchange (the target and the summary masked by ``mask``)."""
    info = vapi.type_info(ex.message_type)
    line = Text(clock(ex.received_at) + " ", style="dim")
    line.append(f"{printable(short_call(ex.call_id)):<8} ", style=call_style(ex.call_id))
    if ex.message_type:
        name = ex.message_type
        style = CATEGORY_STYLE.get(info.category, "white")
    else:
        name = mask.text(f"{ex.method} {ex.target}")
        style = "white"
    mark = f" {REPLY_MARK}" if ex.reply_needed else ""
    line.append(f"{printable(name)}{mark}".ljust(30) + " ", style=style)
    status = str(ex.status) if ex.status is not None else "---"
    line.append(f"{status:>3} ", style=status_style(ex))
    ms = ex.duration_ms
    line.append(f"{ms:>7.0f} ms " if ms is not None and ms >= 10 else f"{(ms or 0):>7.1f} ms ", style=latency_style(ex))
    line.append(f"{human_bytes(ex.request_bytes)}→{human_bytes(ex.response_bytes)}".ljust(17) + " ", style="dim")
    if ex.auth is not None:
        line.append("auth✓ " if ex.auth.ok else "auth✗ ", style="green" if ex.auth.ok else "bold red")
    if ex.fallback:
        line.append("fallback answered ", style="bold yellow")
    summary = summarize(ex, mask) if ex.message_type else ""
    if summary:
        line.append(printable(summary))
    return line


def detail_lines(ex: Exchange, mask: Masker = DEFAULT_MASK) -> list[tuple[str, str]]:
    """Error, auth and problem lines shown under an exchange (masked: errors quote URLs and replies)."""
    out: list[tuple[str, str]] = []
    if ex.error:
        out.append((f"✗ {printable(mask.text(ex.error), None)}", "bold red"))
    if ex.auth is not None and not ex.auth.ok:
        out.append((f"✗ authentication failed: {printable(mask.text(ex.auth.reason), None)}", "red"))
    for p in ex.problems:
        mark = "✗" if p.level == "error" else "⚠"
        out.append((f"{mark} {printable(mask.text(p.message), None)}", "red" if p.level == "error" else "yellow"))
    if ex.message_type == "end-of-call-report" and not ex.error:
        msg = vapi.message_of(ex.payload)
        ended = printable(mask.text(end_of_call_summary(msg)), None)
        out.append((f"■ call {printable(short_call(ex.call_id))} ended: {ended}", "bold blue"))
    return out


def banner_lines(ready: Ready) -> list[Text]:
    lines = [Text("vapi-dev listen", style="bold")]

    def row(label: str, value: str, style: str = "") -> None:
        t = Text(f"  {label:<10} ", style="dim")
        t.append(value, style=style)
        lines.append(t)

    row("Local", ready.local_url)
    row("Forward →", ready.forward_to)
    if ready.public_url:
        row("Public", ready.public_url, "bold green")
        lines.append(
            Text("             paste this as the Server URL in Vapi (assistant, phone number or tool)", style="dim")
        )
    else:
        row("Public", "none — local only", "yellow")
    if ready.inspect_url:
        row("Inspector", ready.inspect_url)
    if ready.note:
        lines.append(Text(f"  {ready.note}", style="yellow"))
    lines.append(Text("  Waiting for events… (Ctrl-C to stop)", style="dim"))
    return lines
