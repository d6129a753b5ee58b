"""The inspector's display filter: free text, by type, by call, only problems, only reply-needed.

A filter only chooses what the list shows; it never changes what is forwarded, recorded or kept in memory.
Typed after ``/``: words are free text, and ``type:NAME``, ``call:ID`` (a prefix is enough), ``is:problem``
and ``is:reply`` are the other filters, so one line says (and edits) the whole filter.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from vapi_dev.exchange import Exchange
from vapi_dev.output.lines import printable
from vapi_dev.redact import Masker
from vapi_dev.vapi.summary import summarize

BODY_SEARCHED = 256 * 1024  # bytes of each body the free text looks through (bodies are kept up to 1 MB)


def has_problem(ex: Exchange) -> bool:
    """Whether the exchange is marked: a failed forward, a failed auth check, or a reply problem."""
    return bool(ex.error or ex.problems or (ex.auth is not None and not ex.auth.ok))


def problem_mark(ex: Exchange) -> tuple[str, str]:
    """(mark, style) of the list's first column: ✗ for errors, ⚠ for warnings only, a space otherwise."""
    if ex.error or (ex.auth is not None and not ex.auth.ok) or any(p.level == "error" for p in ex.problems):
        return "✗", "bold red"
    if ex.problems:
        return "⚠", "yellow"
    return " ", ""


def type_name(ex: Exchange) -> str:
    return ex.message_type or "http"


@dataclass(frozen=True)
class Filter:
    text: str = ""  # lower-cased words, each must occur (type, call id, target, summary or a body)
    type: str | None = None  # a message type ('http' for plain HTTP); 'transcript' also finds its variants
    call: str | None = None  # a call id or the start of one
    problems: bool = False
    reply_needed: bool = False

    @property
    def active(self) -> bool:
        return bool(self.text or self.type or self.call or self.problems or self.reply_needed)

    def matches(self, ex: Exchange, mask: Masker) -> bool:
        if self.problems and not has_problem(ex):
            return False
        if self.reply_needed and not ex.reply_needed:
            return False
        if self.type is not None:
            name = type_name(ex)
            if name != self.type and not name.startswith(self.type + "["):
                return False
        if self.call is not None and not (ex.call_id or "").startswith(self.call):
            return False
        return not self.text or all(_found(word, ex, mask) for word in self.text.split())

    def describe(self) -> str:
        """The filter as the line typed after ``/`` would give it (empty: everything shown)."""
        parts = [self.text] if self.text else []
        if self.type:
            parts.append(f"type:{self.type}")
        if self.call:
            parts.append(f"call:{self.call}")
        if self.problems:
            parts.append("is:problem")
        if self.reply_needed:
            parts.append("is:reply")
        return printable(" ".join(parts))

    def toggled(self, name: str, value: str | bool | None) -> Filter:
        """This filter with ``name`` set to ``value``, or cleared when it is set to that already."""
        current = getattr(self, name)
        if current == value:
            value = False if isinstance(value, bool) else None
        changes: dict[str, Any] = {name: value}
        return dataclasses.replace(self, **changes)


def parse(line: str) -> Filter:
    """The filter a ``/`` line describes (see the module's docstring)."""
    words: list[str] = []
    type_: str | None = None
    call: str | None = None
    problems = reply_needed = False
    for word in line.split():
        key, sep, value = word.partition(":")
        if sep and key == "type" and value:
            type_ = value
        elif sep and key == "call" and value:
            call = value
        elif word in ("is:problem", "is:problems"):
            problems = True
        elif word in ("is:reply", "is:reply-needed"):
            reply_needed = True
        else:
            words.append(word.lower())
    return Filter(" ".join(words), type_, call, problems, reply_needed)


def _found(word: str, ex: Exchange, mask: Masker) -> bool:
    head = f"{type_name(ex)} {ex.call_id or ''} {ex.id} {ex.method} {ex.target} {summarize(ex, mask)}"
    if word in head.lower():
        return True
    needle = word.encode()
    return needle in ex.body[:BODY_SEARCHED].lower() or needle in ex.response_body[:BODY_SEARCHED].lower()
