"""How one exchange, a banner or a notice looks in the terminal: styles, line formats, helpers.

Everything is laid out for the terminal's width: an exchange is always one row (its columns chosen by
LAYOUTS), and longer texts (notices, problems, the banner) wrap on words with a hanging indent.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.cells import cell_len, get_character_cell_size
from rich.text import Text

from vapi_dev.exchange import Exchange, Ready
from vapi_dev.redact import Masker
from vapi_dev.vapi import messages as vapi
from vapi_dev.vapi.summary import end_of_call_summary, redirect_shown, summarize

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
TIME_STYLE = "dim"  # the timestamp, and nothing else, is faint: the rest of a line is what is read


@dataclass(frozen=True)
class Layout:
    """The columns of an exchange line in a terminal at least ``min_width`` columns wide."""

    min_width: int
    type_width: int  # the type column is padded to this; a longer name pushes the rest right
    latency_width: int  # the latency's figures
    precise: bool  # tenths of a millisecond under 10 ms
    sizes: bool  # request→reply sizes


# Widest first; a line takes the first row its terminal is wide enough for. Narrower, the sizes go first,
# then the latency's precision (and the type column's padding to the longest name); whatever still does not
# fit is cut from the summary with "…", and in a very narrow terminal from the type: one exchange, one row.
LAYOUTS = (
    Layout(min_width=120, type_width=30, latency_width=7, precise=True, sizes=True),  # 82 + auth + summary
    Layout(min_width=100, type_width=30, latency_width=7, precise=True, sizes=False),  # 64 + …
    Layout(min_width=0, type_width=20, latency_width=5, precise=False, sizes=False),  # 52 + …
)

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
        return ""
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
    return "green" if ex.reply_needed else ""


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


def stamp(epoch: float) -> Text:
    """The start of a stream line: its time, faint, and a space."""
    return Text.assemble((clock(epoch), TIME_STYLE), " ")


def layout_for(width: int | None) -> Layout:
    return next(lay for lay in LAYOUTS if width is None or width >= lay.min_width)


def latency_cell(ms: float | None, layout: Layout) -> str:
    ms = ms or 0.0
    digits = 1 if layout.precise and ms < 10 else 0
    return f"{ms:>{layout.latency_width}.{digits}f} ms"


def exchange_line(ex: Exchange, mask: Masker = DEFAULT_MASK, width: int | None = None) -> Text:
    """The one-row view of a finished exchange (the target and the summary masked by ``mask``) in at most
    ``width`` columns (None: every column, nothing cut)."""
    layout = layout_for(width)
    info = vapi.type_info(ex.message_type)
    line = stamp(ex.received_at)
    line.append(f"{printable(short_call(ex.call_id)):<8} ", style=call_style(ex.call_id))
    if ex.message_type:
        name = ex.message_type
        style = CATEGORY_STYLE.get(info.category, "white")
    else:
        name = mask.text(f"{ex.method} {ex.target}")
        style = "white"
    mark = f" {REPLY_MARK}" if ex.reply_needed else ""
    type_at = len(line)
    line.append(f"{printable(name)}{mark}".ljust(layout.type_width) + " ", style=style)
    type_end = len(line)
    status = str(ex.status) if ex.status is not None else "---"
    moved = redirect_shown(ex, mask)  # Vapi does not follow redirects: say where this one points
    if moved is not None:
        status += f" → {printable(moved)}"
    line.append(f"{status:>3} ", style=status_style(ex))
    line.append(latency_cell(ex.duration_ms, layout) + " ", style=latency_style(ex))
    if layout.sizes:
        line.append(f"{human_bytes(ex.request_bytes)}→{human_bytes(ex.response_bytes)}".ljust(17) + " ")
    if ex.auth is not None:
        line.append("auth✓ " if ex.auth.ok else "auth✗ ", style="green" if ex.auth.ok else "bold red")
    if ex.fallback:
        line.append("fallback answered ", style="bold yellow")
    if width is not None and line.cell_len > width:  # a long name (or status) in a narrow terminal
        line = _narrower(line, type_at, type_end, line.cell_len - width)
    summary = printable(summarize(ex, mask)) if ex.message_type else ""
    room = None if width is None else width - line.cell_len
    if summary and (room is None or room >= 4):  # a summary cut to fewer than 3 characters says nothing
        line.append_text(clip(summary, room))
    return fit(line, width)


def _narrower(line: Text, start: int, end: int, excess: int) -> Text:
    """``line`` with its cell ``line[start:end]`` narrower by ``excess`` columns: less padding, then cut."""
    cell = line[start:end]
    narrower = max(cell.cell_len - excess, 3)  # its separating space included
    cell.rstrip()
    cell.truncate(narrower - 1, overflow="ellipsis", pad=True)
    cell.append(" ")
    return line[:start] + cell + line[end:]


def clip(text: str, width: int | None) -> Text:
    """``text`` cut to ``width`` columns, ending in "…" when cut (None: whole)."""
    t = Text(text)
    if width is not None:
        t.truncate(max(width, 1), overflow="ellipsis")
    return t


def fit(line: Text, width: int | None) -> Text:
    """``line`` as one row of at most ``width`` columns: trailing spaces dropped, the end cut with "…"."""
    line.rstrip()
    if width is not None and line.cell_len > width:
        line.truncate(max(width, 1), overflow="ellipsis")
    return line


def fitting(head: Text, tails: Sequence[Text], width: int | None) -> Text:
    """``head`` and the first of ``tails`` (longest first) that fits in ``width``, else the last, cut."""
    room = None if width is None else width - head.cell_len
    tail = next((t for t in tails if room is None or cell_len(t.plain.rstrip()) <= room), tails[-1])
    return fit(head + tail, width)


_WORD = re.compile(r"\S+")


def wrap(text: Text, width: int | None, indent: int = 2) -> Text:
    """``text`` in rows of at most ``width`` columns, broken at spaces (a word longer than a row where it
    must), each row after the first indented by ``indent`` columns: a hanging indent. None: one row."""
    plain = text.plain
    if width is None or cell_len(plain) <= width:
        return text
    if width < indent + 12:  # no room for an indent worth having
        indent = 0
    rows: list[tuple[int, int]] = []
    start = end = col = 0  # the row being filled is plain[start:end], ``col`` columns wide with its indent
    placed = False  # a word is on that row
    for m in _WORD.finditer(plain):
        s, e = m.span()
        gap = cell_len(plain[end:s])  # the spaces before the word (on the first row: its leading ones)
        if not placed and not rows and gap >= width - 1:
            start, gap = s, 0  # leading spaces wider than the terminal: dropped
        size = cell_len(plain[s:e])
        # a word that fits a row of its own starts one; a longer one (a URL) is cut from where it is
        if placed and col + gap + size > width and size <= width - indent:
            rows.append((start, end))
            start, col, gap, placed = s, indent, 0, False
        col += gap
        while col + cell_len(plain[s:e]) > width:  # longer than what is left of the row: cut where it must
            cut, used = s, col
            while cut < e and used + get_character_cell_size(plain[cut]) <= width:
                used += get_character_cell_size(plain[cut])
                cut += 1
            if cut == s and placed:  # no room left on this row: the word starts the next one
                rows.append((start, end))
                start, col, placed = s, indent, False
                continue
            cut = max(cut, s + 1)  # (a double-width character in a one-column terminal)
            rows.append((start, cut))
            start = s = cut
            col = indent
        end, placed = e, True
        col += cell_len(plain[s:e])
    rows.append((start, end))
    out = text[rows[0][0] : rows[0][1]]
    for a, b in rows[1:]:
        out.append("\n" + " " * indent)
        out.append_text(text[a:b])
    return out


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


def banner_lines(ready: Ready, width: int | None = None) -> list[Text]:
    """The banner, each line wrapped to ``width``: a row's value continues under the value."""
    lines = [Text("vapi-dev listen", style="bold")]
    value_at = 13

    def row(label: str, value: str, style: str = "") -> None:
        t = Text(f"  {label:<10} ")
        t.append(printable(value, None), style=style)
        lines.append(wrap(t, width, value_at))

    row("Local", ready.local_url)
    row("Forward →", ready.forward_to)
    if ready.public_url:
        row("Public", ready.public_url, "bold green")
        hint = " " * value_at + "paste this as the Server URL in Vapi (assistant, phone number or tool)"
        lines.append(wrap(Text(hint), width, value_at))
    else:
        row("Public", "none — local only", "yellow")
    if ready.inspect_url:
        row("Inspector", ready.inspect_url)
    if ready.note:
        lines.append(wrap(Text(f"  {printable(ready.note, None)}", style="yellow"), width, 4))
    lines.append(wrap(Text("  Waiting for events… (Ctrl-C to stop)"), width, 4))
    return lines
