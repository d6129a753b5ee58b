"""The human stream: the rich terminal sink (banner, one line per exchange, summaries under bursts).

Every line is laid out for the console's width, read again for each line, so a resized terminal is
followed at once. A pipe or a file without COLUMNS has no width: its lines stay whole (LOG_WIDTH).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.json import JSON
from rich.text import Text

from vapi_dev.config import Config
from vapi_dev.exchange import Event, Exchange, Finished, Notice, Pending, Ready, TunnelChanged
from vapi_dev.output.lines import (
    NOTICE_STYLE,
    REPLY_MARK,
    Redactor,
    banner_lines,
    call_style,
    clock,
    detail_lines,
    exchange_line,
    fitting,
    is_chatty,
    printable,
    printable_data,
    short_call,
    stamp,
    truncate,
    wrap,
)
from vapi_dev.output.threaded import ThreadedSink
from vapi_dev.output.view import BodyView, make_masker
from vapi_dev.redact import Masker
from vapi_dev.vapi import messages as vapi

LINE_RATE = 50  # exchange lines a second; beyond this the display summarises (forwarding never slows)
NOTABLE_IN_BURST = 10  # failed or flagged exchanges still shown one by one in a summarised batch
BURST_PAUSE_S = 0.1  # short: exchanges held for the display cost memory (0.5 s: +30 MB at peak)
CHATTY_FLUSH_S = 1.5
TEXT_BODY_LIMIT = 2000  # characters of a text body shown without --full (and of a body that failed to render)
LOG_WIDTH = 10_000  # the width of a pipe or a file: lines laid out with every column, nothing cut or wrapped
PENDING = (  # the still-waiting text, longest first: the first that fits the terminal is shown
    "… still waiting for your app ({waited:.1f} s of the {deadline:g} s deadline)",
    "… still waiting ({waited:.1f} s of {deadline:g} s)",
    "… waiting {waited:.1f} s",
)


def _isatty(file: TextIO) -> bool:
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no such method, or closed
        return False


def make_console(file: TextIO, color: bool | None, width: int | None = None) -> Console:
    """A console on ``file``: colour only on a terminal, never with NO_COLOR (rich reads it). Its width:
    ``width``, else COLUMNS, else the terminal's (read again for each line, so a resize is followed), and a
    pipe or a file without COLUMNS is a log, not a screen: LOG_WIDTH, lines whole."""
    if width is None and not _isatty(file) and not os.environ.get("COLUMNS", "").isdigit():
        width = LOG_WIDTH
    if color is None:
        return Console(file=file, highlight=False, soft_wrap=True, width=width)
    return Console(file=file, highlight=False, soft_wrap=True, width=width, force_terminal=color, no_color=not color)


class TerminalSink(ThreadedSink):
    """The human stream: a banner, one line per exchange, notices, and -v bodies.

    Lines are masked like the bodies: by the Masker of ``redact`` when it is a BodyView, else by one
    made from ``config`` (its secrets, --show-secrets).
    """

    def __init__(
        self, console: Console, config: Config, redact: Redactor, *, exchanges: bool = True, mask: Masker | None = None
    ) -> None:
        self.console = console
        self.config = config
        self.redact = redact
        if mask is None:
            mask = redact.mask if isinstance(redact, BodyView) else make_masker(config.auth, config.show_secrets)
        self.mask = mask
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
        name = ex.message_type or "http"
        if cfg.events and name not in cfg.events and (vapi.raw_type(ex) or "") not in cfg.events:
            return False
        if cfg.exclude and (name in cfg.exclude or (vapi.raw_type(ex) or "") in cfg.exclude):
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
                self._finished_or_fallback(ex)
            elif isinstance(event, Pending):
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
            text = printable(f"vapi-dev: could not render an event ({type(exc).__name__}: {exc})", None)
            self.console.print(wrap(Text(text, style="red"), self.console.width))

    # -- lines -------------------------------------------------------------------------------

    def _finished_or_fallback(self, ex: Exchange) -> None:
        """One exchange whose rendering fails costs only its own detail: a plain line, never the batch."""
        try:
            self._finished(ex)
        except Exception as exc:
            self.console.print(wrap(Text(self._fallback_line(ex, exc), style="yellow"), self.console.width, 9))

    def _fallback_line(self, ex: Exchange, exc: Exception) -> str:
        what = ex.message_type or f"{ex.method} {ex.target}"
        status = ex.status if ex.status is not None else "---"
        return printable(
            f"{clock(ex.received_at)} {short_call(ex.call_id)} {self.mask.text(what)} {status}"
            f" (could not render this exchange: {type(exc).__name__})",
            None,
        )

    def _finished(self, ex: Exchange) -> None:
        if not self.config.all and not self.config.verbose and is_chatty(ex):
            if not self._chatty:
                self._chatty_since = time.monotonic()
            self._chatty.append(ex)
            return
        self._flush_chatty()
        width = self.console.width
        self.console.print(exchange_line(ex, self.mask, width))
        for text, style in detail_lines(ex, self.mask):
            self.console.print(wrap(Text("    " + text, style=style), width, 6))  # under the text, past the mark
        if self.config.verbose:
            self._bodies(ex)

    def _flush_chatty(self) -> None:
        if not self._chatty:
            return
        items, self._chatty = self._chatty, []
        counts = Counter((ex.message_type or "?") for ex in items)
        calls = {short_call(ex.call_id) for ex in items}
        line = stamp(items[-1].received_at)
        line.append(", ".join(f"{n}× {printable(t)}" for t, n in counts.most_common()), style="cyan")
        hints = (f"  (call {printable(', '.join(sorted(calls)))}; --all shows each)", "  (--all shows each)", "")
        self.console.print(fitting(line, [Text(h) for h in hints], self.console.width))

    def _pending(self, ex: Exchange) -> None:
        line = stamp(time.time())
        line.append(f"{printable(short_call(ex.call_id)):<8} ", style=call_style(ex.call_id))
        line.append(f"{printable(ex.message_type or ex.method)} {REPLY_MARK} ", style="bold magenta")
        waited = time.monotonic() - ex.started
        texts = [Text(t.format(waited=waited, deadline=ex.deadline_s), style="yellow") for t in PENDING]
        self.console.print(fitting(line, texts, self.console.width))

    def _summary(self, items: Sequence[Exchange]) -> None:
        counts = Counter((ex.message_type or self.mask.text(f"{ex.method} {ex.path}"), ex.status or 0) for ex in items)
        parts = [f"{n}× {printable(t)} {s}" for (t, s), n in counts.most_common(4)]
        line = stamp(time.time())
        line.append(f"⋯ {len(items)} more exchanges")
        # as many of the commonest as fit, "…" for the rest
        tails = [
            Text(" (" + ", ".join([*parts[:k], "…"] if k < len(counts) else parts) + ")")
            for k in range(len(parts), -1, -1)
        ]
        self.console.print(fitting(line, tails, self.console.width))

    def _bodies(self, ex: Exchange) -> None:
        try:
            request, reply = self.redact(ex)
        except Exception:  # the view failed: the masked raw text of both bodies instead
            request, reply = self._raw_text(ex.body), self._raw_text(ex.response_body)
        for label, view, raw in (("request", request, ex.body), ("reply", reply, ex.response_body)):
            if view is None:
                continue
            self.console.print(Text(f"    {label}:", style="italic"))
            if isinstance(view, (dict, list)):
                try:
                    data = view if self.config.full else truncate(view)
                    rendered: JSON | Text = JSON.from_data(printable_data(data), indent=2)
                except (RecursionError, ValueError, TypeError):  # too deep for rich's JSON: the raw text, shortened
                    rendered = self._text(self._raw_text(raw) or "", full=False)
            else:
                rendered = self._text(str(view), full=self.config.full)
            self.console.print(rendered, soft_wrap=True)

    def _raw_text(self, raw: bytes) -> str | None:
        return self.mask.text(raw.decode("utf-8", "replace")) if raw else None

    def _text(self, text: str, *, full: bool) -> Text:
        if not full and len(text) > TEXT_BODY_LIMIT:
            text = text[:TEXT_BODY_LIMIT] + f"… ({len(text)} chars)"
        return Text(printable(text, None))

    def _other(self, event: Event) -> None:
        width = self.console.width
        if isinstance(event, Ready):
            for line in banner_lines(event, width):
                self.console.print(line)
        elif isinstance(event, TunnelChanged):
            if event.up:
                restored = f"tunnel restored: {event.public_url}  {event.reason}".rstrip()
                text = Text(printable(restored, None), style="bold green")
            else:
                text = Text(printable(f"tunnel lost: {event.reason} — restoring…", None), style="bold red")
            self.console.print(wrap(text, width))
        elif isinstance(event, Notice):
            text = Text(printable(event.text, None), style=NOTICE_STYLE.get(event.level, ""))
            self.console.print(wrap(text, width))
