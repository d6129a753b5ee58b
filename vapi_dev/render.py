"""Output sinks: the rich terminal stream and the NDJSON writer, each on its own thread."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

from rich.console import Console
from rich.json import JSON
from rich.text import Text

from vapi_dev import vapi
from vapi_dev.config import Config
from vapi_dev.exchange import Event, Exchange, Finished, Notice, Ready, Started, TunnelChanged

CATEGORY_STYLE = {
    "lifecycle": "blue",
    "conversation": "cyan",
    "reply": "bold magenta",
    "error": "bold red",
    "other": "white",
}
CALL_COLOURS = ("green", "yellow", "blue", "magenta", "cyan", "bright_green", "bright_yellow",
                "bright_blue", "bright_magenta", "bright_cyan")
NOTICE_STYLE = {"info": "cyan", "warning": "yellow", "error": "bold red"}
REPLY_MARK = "↩"  # Vapi waits for this reply
LINE_RATE = 50  # exchange lines a second; beyond this the display summarises (forwarding never slows)
NOTABLE_IN_BURST = 10  # failed or flagged exchanges still shown one by one in a summarised batch
BURST_PAUSE_S = 0.1  # short: exchanges held for the display cost memory (0.5 s: +30 MB at peak)
CHATTY_FLUSH_S = 1.5
HANDOFF_S = 0.05  # events reach the output thread in batches at most this late

Redactor = Callable[[Exchange], tuple[Any, Any]]  # (request view, reply view) safe to print


def make_console(file: TextIO, color: bool | None) -> Console:
    """A console on ``file``: colour only on a terminal, never with NO_COLOR (rich reads it)."""
    if color is None:
        return Console(file=file, highlight=False, soft_wrap=True)
    return Console(file=file, highlight=False, soft_wrap=True, force_terminal=color, no_color=not color)


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


class ThreadedSink:
    """Runs ``handle_batch`` on a daemon thread so that slow output never blocks the event loop.

    ``emit`` only appends to a list on the loop; one timer per HANDOFF_S hands the whole list to the
    thread, so a flood of events costs one thread wake-up (and GIL hand-off) per batch, not per event.
    """

    def __init__(self, name: str, idle_timeout: float | None = None) -> None:
        self._q: queue.SimpleQueue[list[Event] | None] = queue.SimpleQueue()
        self._idle_timeout = idle_timeout
        self._outbox: list[Event] = []
        self._handle: asyncio.TimerHandle | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        self._outbox.append(event)
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a plain caller): hand over at once
                self._handoff()
                return
            self._handle = loop.call_later(HANDOFF_S, self._handoff)

    def _handoff(self) -> None:
        self._handle = None
        if self._outbox:
            batch, self._outbox = self._outbox, []
            self._q.put(batch)

    def _run(self) -> None:
        while True:
            try:
                first = self._q.get(timeout=self._idle_timeout)
            except queue.Empty:
                self.on_idle()
                continue
            batch: list[Event] = []
            stop = first is None
            if first is not None:
                batch.extend(first)
            while not stop:
                try:
                    item = self._q.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                else:
                    batch.extend(item)
            try:
                if batch:
                    self.handle_batch(batch)
            except Exception as e:  # output must never kill the listener
                self.on_error(e)
            if stop:
                self.on_idle()
                self.flush()
                return
            pause = self.pause_after()
            if pause:
                time.sleep(pause)  # under a flood, let events pile up into summary lines

    def handle_batch(self, batch: list[Event]) -> None:
        raise NotImplementedError

    def pause_after(self) -> float:
        return 0.0

    def on_idle(self) -> None:
        pass

    def on_error(self, exc: Exception) -> None:
        pass

    def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handoff()  # nothing emitted before aclose is lost
        self._q.put(None)
        await asyncio.to_thread(self._thread.join, 10.0)


class TerminalSink(ThreadedSink):
    """The human stream: a banner, one line per exchange, notices, and -v bodies."""

    def __init__(self, console: Console, config: Config, redact: Redactor,
                 *, exchanges: bool = True) -> None:
        self.console = console
        self.config = config
        self.redact = redact
        self.exchanges = exchanges  # False in --json mode: only banner and notices (on stderr)
        self._chatty: list[Exchange] = []
        self._chatty_since = 0.0
        self._window_start = 0.0
        self._window_lines = 0
        self._bursting = False
        super().__init__("vapi-dev-terminal", idle_timeout=0.5)

    # -- filters -----------------------------------------------------------------------------

    def wants(self, ex: Exchange) -> bool:
        cfg = self.config
        name = vapi.normalise_type(ex.message_type) if ex.message_type else "http"
        if cfg.events and name not in cfg.events and (ex.message_type or "") not in cfg.events:
            return False
        if cfg.exclude and (name in cfg.exclude or (ex.message_type or "") in cfg.exclude):
            return False
        return not (cfg.call and not (ex.call_id or "").startswith(cfg.call))

    # -- batching ----------------------------------------------------------------------------

    def pause_after(self) -> float:
        return BURST_PAUSE_S if self._bursting else 0.0

    def _over_rate(self, n: int) -> bool:
        """True when printing ``n`` more lines would exceed LINE_RATE in the current one-second window."""
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_lines = now, 0
        over = self._window_lines + n > LINE_RATE
        self._window_lines += n
        return over

    def handle_batch(self, batch: list[Event]) -> None:
        with self.console:  # one write for the whole batch
            self._batch(batch)

    def _batch(self, batch: list[Event]) -> None:
        wanted = sum(1 for e in batch if isinstance(e, Finished) and self.exchanges and self.wants(e.exchange))
        burst = self._bursting = self._over_rate(wanted)
        shown = 0
        overflow: list[Exchange] = []
        for event in batch:
            if isinstance(event, Finished):
                if not self.exchanges or not self.wants(event.exchange):
                    continue
                ex = event.exchange
                notable = bool(ex.error or ex.problems or (ex.status or 0) >= 500)
                if burst and (shown >= NOTABLE_IN_BURST or not notable):
                    overflow.append(ex)
                    continue
                shown += 1
                self._finished(ex)
            elif isinstance(event, Started):
                if self.exchanges and self.wants(event.exchange):
                    self._pending(event.exchange)
            else:
                self._flush_chatty()
                self._other(event)
        if overflow:
            self._flush_chatty()
            self._summary(overflow)

    def on_idle(self) -> None:
        if self._chatty and time.monotonic() - self._chatty_since >= CHATTY_FLUSH_S:
            self._flush_chatty()

    def flush(self) -> None:
        self._flush_chatty()
        self.console.file.flush()

    def on_error(self, exc: Exception) -> None:
        with contextlib.suppress(Exception):
            self.console.print(f"vapi-dev: could not render an event ({type(exc).__name__}: {exc})",
                               style="red", markup=False)

    # -- lines -------------------------------------------------------------------------------

    def _finished(self, ex: Exchange) -> None:
        if not self.config.all and not self.config.verbose and is_chatty(ex):
            if not self._chatty:
                self._chatty_since = time.monotonic()
            self._chatty.append(ex)
            return
        self._flush_chatty()
        self.console.print(exchange_line(ex))
        for text, style in detail_lines(ex):
            self.console.print(Text("    " + text, style=style))
        if self.config.verbose:
            self._bodies(ex)

    def _flush_chatty(self) -> None:
        if not self._chatty:
            return
        items, self._chatty = self._chatty, []
        counts = Counter(vapi.normalise_type(ex.message_type or "?") for ex in items)
        calls = {short_call(ex.call_id) for ex in items}
        line = Text(_clock(items[-1].received_at) + " ", style="dim")
        line.append(", ".join(f"{n}× {t}" for t, n in counts.most_common()), style="cyan dim")
        line.append(f"  (call {', '.join(sorted(calls))}; --all shows each)", style="dim")
        self.console.print(line)

    def _pending(self, ex: Exchange) -> None:
        line = Text(_clock(time.time()) + " ", style="dim")
        line.append(f"{short_call(ex.call_id):<8} ", style=call_style(ex.call_id))
        line.append(f"{ex.message_type or ex.method} {REPLY_MARK} ", style="bold magenta")
        waited = time.monotonic() - ex.started
        line.append(f"… still waiting for your app ({waited:.1f} s of the {ex.deadline_s:g} s deadline)",
                    style="yellow")
        self.console.print(line)

    def _summary(self, items: Sequence[Exchange]) -> None:
        counts = Counter(
            (vapi.normalise_type(ex.message_type) if ex.message_type else f"{ex.method} {ex.path}",
             ex.status or 0) for ex in items)
        parts = ", ".join(f"{n}× {t} {s}" for (t, s), n in counts.most_common(4))
        if len(counts) > 4:
            parts += ", …"
        line = Text(_clock(time.time()) + " ", style="dim")
        line.append(f"⋯ {len(items)} more exchanges ({parts})", style="dim")
        self.console.print(line)

    def _bodies(self, ex: Exchange) -> None:
        request, reply = self.redact(ex)
        for label, view in (("request", request), ("reply", reply)):
            if view is None:
                continue
            self.console.print(Text(f"    {label}:", style="dim"))
            if isinstance(view, (dict, list)):
                data = view if self.config.full else truncate(view)
                self.console.print(JSON.from_data(data, indent=2), soft_wrap=True)
            else:
                text = str(view)
                if not self.config.full and len(text) > 2000:
                    text = text[:2000] + f"… ({len(text)} chars)"
                self.console.print(Text(text), soft_wrap=True)

    def _other(self, event: Event) -> None:
        if isinstance(event, Ready):
            for line in banner_lines(event):
                self.console.print(line)
        elif isinstance(event, TunnelChanged):
            if event.up:
                self.console.print(Text(f"tunnel restored: {event.public_url}  {event.reason}".rstrip(),
                                        style="bold green"))
            else:
                self.console.print(Text(f"tunnel lost: {event.reason} — restoring…", style="bold red"))
        elif isinstance(event, Notice):
            self.console.print(Text(event.text, style=NOTICE_STYLE.get(event.level, "")))


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def exchange_line(ex: Exchange) -> Text:
    """The one-line view of a finished exchange."""
    info = vapi.type_info(ex.message_type)
    line = Text(_clock(ex.received_at) + " ", style="dim")
    line.append(f"{short_call(ex.call_id):<8} ", style=call_style(ex.call_id))
    if ex.message_type:
        name = ex.message_type
        style = CATEGORY_STYLE.get(info.category, "white")
    else:
        name = f"{ex.method} {ex.target}"
        style = "white"
    mark = f" {REPLY_MARK}" if ex.reply_needed else ""
    line.append(f"{name}{mark}".ljust(30) + " ", style=style)
    status = str(ex.status) if ex.status is not None else "---"
    line.append(f"{status:>3} ", style=status_style(ex))
    ms = ex.duration_ms
    line.append(f"{ms:>7.0f} ms " if ms is not None and ms >= 10 else f"{(ms or 0):>7.1f} ms ",
                style=latency_style(ex))
    line.append(f"{human_bytes(ex.request_bytes)}→{human_bytes(ex.response_bytes)}".ljust(17) + " ",
                style="dim")
    if ex.auth is not None:
        line.append("auth✓ " if ex.auth.ok else "auth✗ ", style="green" if ex.auth.ok else "bold red")
    if ex.fallback:
        line.append("fallback answered ", style="bold yellow")
    summary = vapi.summarize(ex) if ex.message_type else ""
    if summary:
        line.append(summary)
    return line


def detail_lines(ex: Exchange) -> list[tuple[str, str]]:
    """Error, auth and problem lines shown under an exchange."""
    out: list[tuple[str, str]] = []
    if ex.error:
        out.append((f"✗ {ex.error}", "bold red"))
    if ex.auth is not None and not ex.auth.ok:
        out.append((f"✗ authentication failed: {ex.auth.reason}", "red"))
    for p in ex.problems:
        mark = "✗" if p.level == "error" else "⚠"
        out.append((f"{mark} {p.message}", "red" if p.level == "error" else "yellow"))
    if ex.message_type == "end-of-call-report" and not ex.error:
        msg = vapi.message_of(ex.payload)
        out.append((f"■ call {short_call(ex.call_id)} ended: {vapi.end_of_call_summary(msg)}", "bold blue"))
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
        lines.append(Text("             paste this as the Server URL in Vapi (assistant, phone number or tool)",
                          style="dim"))
    else:
        row("Public", "none — local only", "yellow")
    if ready.inspect_url:
        row("Inspector", ready.inspect_url)
    if ready.note:
        lines.append(Text(f"  {ready.note}", style="yellow"))
    lines.append(Text("  Waiting for events… (Ctrl-C to stop)", style="dim"))
    return lines


# -- NDJSON ------------------------------------------------------------------------------------


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
        "message_type": ex.message_type,
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
        "summary": vapi.summarize(ex) if ex.message_type else "",
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
            return {"event": "ready", "local_url": event.local_url, "public_url": event.public_url,
                    "forward_to": event.forward_to, "tunnel": event.tunnel, "inspect_url": event.inspect_url,
                    "note": event.note}
        if isinstance(event, TunnelChanged):
            return {"event": "tunnel", "up": event.up, "public_url": event.public_url, "reason": event.reason}
        if isinstance(event, Started):
            ex = event.exchange
            return {"event": "pending", "id": ex.id, "message_type": ex.message_type, "call_id": ex.call_id,
                    "deadline_s": ex.deadline_s}
        if isinstance(event, Notice):
            return {"event": "notice", "level": event.level, "text": event.text}
        return None

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.stream.flush()
