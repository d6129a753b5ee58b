"""What the calls view and a call's timeline show, computed from Exchanges (pure: no Textual here).

``call_rows`` sums up every call (one pass over the exchanges); ``timeline`` turns one call's exchanges
into entries: what was said, tool calls with their arguments, result and latency (results matched to calls
by toolCallId), status changes, transfers, other events in one compact line each, and the end-of-call
report. Transcript lines come from ``transcript`` messages when the call has any (the assistant opted in to
them): final ones, and of a run of partials that no final of the same role closed, the last one, marked
"(partial)". Without transcripts (Vapi's default serverMessages send none) they come from the history each
``conversation-update`` carries, each message shown once. Entries are timed by when vapi-dev received their
exchange, the clock of the event list, rather than by Vapi's timestamps in the payload.

Every text taken from a body is masked with the Masker given and cut to a bounded length; it is NOT yet
escaped for a terminal (``output.lines.printable`` does that where it is shown).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from vapi_dev.exchange import Exchange
from vapi_dev.output.lines import detail_lines
from vapi_dev.redact import Masker
from vapi_dev.vapi.messages import ToolCall, as_dict, message_of, tool_calls, type_info
from vapi_dev.vapi.summary import (
    TOO_DEEP,
    _duration,
    _failed,
    _fmt_args,
    _outcome,
    _reply_of,
    _short,
    end_of_call_summary,
    summarize,
)

TEXT_LIMIT = 300  # characters of an entry's one-line text
DETAIL_LIMIT = 1000  # characters of its detail (tool arguments → result, the call's summary)
KINDS = ("user", "assistant", "tool", "status", "transfer", "summary", "event")
ROLES = {"user": "user", "assistant": "assistant", "bot": "assistant"}  # transcript roles shown as lines
ENDED_TYPES = frozenset({"end-of-call-report", "status-update"})  # where an ended reason is read
UNMERGED = frozenset({"speech-update"})  # chatty, but each says who started or stopped: never counted together


@dataclass(frozen=True)
class CallRow:
    """One call in the calls view."""

    call_id: str
    started_at: float  # epoch seconds (Exchange.received_at of its first exchange)
    duration_s: float | None  # from the end-of-call-report (durationSeconds / startedAt-endedAt) else last-first
    events: int
    problems: int  # exchanges with problems, an error, or auth✗
    ended_reason: str | None
    cost: float | None


@dataclass(frozen=True)
class Entry:
    """One line of a call's timeline."""

    at: float  # epoch seconds
    kind: str  # one of KINDS
    text: str  # one line, already masked; NOT yet escaped for a terminal
    detail: str = ""  # e.g. tool arguments → result; masked
    latency_ms: float | None = None
    problem: bool = False
    exchange_id: str = ""  # the exchange this entry came from


def flagged(ex: Exchange) -> bool:
    """The exchange has problems, an error, or failed authentication (the calls view counts these)."""
    return bool(ex.problems or ex.error or (ex.auth is not None and not ex.auth.ok))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ended_reason(msg: dict[str, Any]) -> str | None:
    for reason in (msg.get("endedReason"), as_dict(msg.get("call")).get("endedReason")):
        if isinstance(reason, str) and reason:
            return reason
    return None


class _Call:
    """What call_rows gathers about one call as it goes."""

    __slots__ = ("cost", "events", "first", "last", "problems", "reason", "reported", "reported_duration")

    def __init__(self, at: float) -> None:
        self.first = self.last = at
        self.events = self.problems = 0
        self.reason: str | None = None
        self.reported = False  # an end-of-call-report was seen: its reason wins over a status-update's
        self.reported_duration: float | None = None
        self.cost: float | None = None

    def add(self, ex: Exchange) -> None:
        self.events += 1
        self.problems += flagged(ex)
        self.last = max(self.last, ex.received_at)
        if ex.message_type not in ENDED_TYPES:
            return
        msg = message_of(ex.payload)
        if ex.message_type == "end-of-call-report":
            self.reported = True
            self.reason = _ended_reason(msg) or self.reason
            self.cost = _number(msg.get("cost"))
            duration = _number(msg.get("durationSeconds"))
            self.reported_duration = (
                duration if duration is not None else _duration(msg.get("startedAt"), msg.get("endedAt"))
            )
        elif msg.get("status") == "ended" and not self.reported:
            self.reason = _ended_reason(msg) or self.reason

    def row(self, call_id: str) -> CallRow:
        duration = self.reported_duration if self.reported_duration is not None else self.last - self.first
        return CallRow(call_id, self.first, duration, self.events, self.problems, self.reason, self.cost)


def call_rows(exchanges: Iterable[Exchange]) -> list[CallRow]:
    """One row per call id (exchanges without one are not calls), oldest call first; one pass."""
    calls: dict[str, _Call] = {}
    for ex in exchanges:
        if not ex.call_id:
            continue
        call = calls.get(ex.call_id)
        if call is None:
            call = calls[ex.call_id] = _Call(ex.received_at)
        call.add(ex)
    rows = [c.row(cid) for cid, c in calls.items()]
    rows.sort(key=lambda r: r.started_at)  # stable: calls started in the same instant keep their order
    return rows


def exchanges_of(call_id: str, exchanges: Iterable[Exchange]) -> list[Exchange]:
    """The exchanges of one call, in the order given."""
    return [ex for ex in exchanges if ex.call_id == call_id]


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _destination(dest: Any, mask: Masker) -> str:
    """A transfer destination in a few words: its number, SIP URI or assistant, else its JSON."""
    if isinstance(dest, dict):
        for key in ("number", "sipUri", "assistantName", "assistantId"):
            if isinstance(dest.get(key), str):
                return _short(dest[key], 60, mask)
    return _short(dest, 60, mask)


class _Builder:
    """Turns one call's exchanges into entries, keeping what spans exchanges (partials, seen history)."""

    def __init__(self, mask: Masker, transcripts: bool) -> None:
        self.mask = mask
        self.transcripts = transcripts  # transcript lines come from transcript messages, not the history
        self.out: list[Entry | None] = []  # None: a partial transcript superseded by a later one
        self.partial: dict[str, int] = {}  # role → index in out of its last partial, not yet closed
        self.seen: set[tuple[int, str, str]] = set()  # (position, role, text) of history messages shown
        self.run: tuple[str, int, int] | None = None  # (type, index in out, count) of the last chatty line

    def add(self, ex: Exchange) -> None:
        start = len(self.out)
        try:
            build = _BUILDERS.get(ex.message_type or "", _Builder._event)
            build(self, ex, message_of(ex.payload))
        except RecursionError:  # a payload nested too deeply to walk
            del self.out[start:]
            self._put(ex, "event", f"{_short(ex.message_type or '', 60, self.mask)} {TOO_DEEP}")
        if flagged(ex):
            if len(self.out) == start:  # nothing else to show, but its problems must be seen
                self._event(ex, {})
            notes = self._notes(ex)
            for i in range(start, len(self.out)):
                e = self.out[i]
                if e is not None:
                    detail = f"{e.detail} · {notes}" if e.detail else notes
                    self.out[i] = replace(e, detail=_cut(detail, DETAIL_LIMIT), problem=True)

    def entries(self) -> list[Entry]:
        return [e for e in self.out if e is not None]

    def _put(self, ex: Exchange, kind: str, text: str, detail: str = "", *, problem: bool = False) -> None:
        latency = ex.duration_ms if ex.reply_needed else None
        entry = Entry(ex.received_at, kind, _cut(text, TEXT_LIMIT), _cut(detail, DETAIL_LIMIT), latency, problem, ex.id)
        self.out.append(entry)

    def _notes(self, ex: Exchange) -> str:
        """Its error, failed authentication and problems, as the stream shows them under its line."""
        return " · ".join(" ".join(text.split()) for text, _ in detail_lines(ex, self.mask) if text[:1] != "■")

    # -- one method per kind of message -----------------------------------------------------------------

    def _event(self, ex: Exchange, msg: dict[str, Any]) -> None:
        if ex.message_type is None:
            self._put(ex, "event", _short(f"{ex.method} {ex.target}", TEXT_LIMIT, self.mask))
            return
        name = _short(ex.message_type, 60, self.mask)  # a type is from the body too
        said = " ".join(summarize(ex, self.mask).split())
        run = self.run
        if run is not None and run[0] == ex.message_type and run[1] == len(self.out) - 1 and not flagged(ex):
            # a stream of chatty messages (model-output tokens, …) in a row: one line that counts them
            first = self.out[run[1]]
            assert first is not None
            self.out[run[1]] = replace(first, text=_cut(f"{name} ×{run[2] + 1} · {said}", TEXT_LIMIT))
            self.run = (run[0], run[1], run[2] + 1)
            return
        self._put(ex, "event", f"{name} {said}".rstrip())
        merges = type_info(ex.message_type).chatty and ex.message_type not in UNMERGED
        self.run = (ex.message_type, len(self.out) - 1, 1) if merges and not flagged(ex) else None

    def _transcript(self, ex: Exchange, msg: dict[str, Any]) -> None:
        role = msg.get("role")
        kind = ROLES.get(role) if isinstance(role, str) else None
        text = _short(msg.get("transcript", ""), TEXT_LIMIT, self.mask)
        if kind is None:
            self._put(ex, "event", f"transcript {_short(str(role), 20, self.mask)}: {text}")
            return
        partial = msg.get("transcriptType") == "partial"
        before = self.partial.pop(kind, None)
        if before is not None:
            self.out[before] = None  # superseded: by a later partial, or closed by a final
        if partial:
            self.partial[kind] = len(self.out)
            text += " (partial)"
        self._put(ex, kind, text)

    def _conversation(self, ex: Exchange, msg: dict[str, Any]) -> None:
        history = msg.get("messages")
        start = len(self.out)
        if not self.transcripts and isinstance(history, list):
            # each update carries the whole history: show the messages not shown yet (walking all of it costs
            # what parsing it did, so a call stays linear in the bytes Vapi sent)
            for i, item in enumerate(history):
                one = as_dict(item)
                role, said = one.get("role"), one.get("message", one.get("content"))
                kind = ROLES.get(role) if isinstance(role, str) else None
                key = (i, str(role), str(said))
                if kind is None or not isinstance(said, str) or key in self.seen:
                    continue
                self.seen.add(key)
                self._put(ex, kind, _short(said, TEXT_LIMIT, self.mask))
        if len(self.out) == start:
            self._event(ex, msg)

    def _tools(self, ex: Exchange, msg: dict[str, Any]) -> None:
        m, reply = self.mask, _reply_of(ex)
        listed = reply.get("results")
        results = (
            {str(r.get("toolCallId", "")): r for r in listed if isinstance(r, dict)} if isinstance(listed, list) else {}
        )
        # no results list: one {"error"} answers every call, and a legacy function-call's {"result"} its one call
        legacy = ex.message_type == "function-call" and "result" in reply
        lone = reply if listed is None and (reply.get("error") not in (None, "") or legacy) else None
        failed = _failed(ex, m)
        for call in tool_calls(ex.payload) or [ToolCall("", "?", None)]:  # a tool-calls message naming none
            text = f"{_short(call.name, 40, m)}({'' if call.arguments is None else _fmt_args(call.arguments, m)})"
            detail = f"arguments {_short(call.arguments, DETAIL_LIMIT // 2, m)}"
            result = results.get(call.id, lone)
            outcome = _outcome(result, m) if result is not None else None
            problem = True
            if result is not None and outcome is not None:
                key = "error" if result.get("error") not in (None, "") else "result"
                text, problem = f"{text} {outcome}", key == "error"
                detail += f" → {key} {_short(result[key], DETAIL_LIMIT // 2, m)}"
            elif failed:
                text += f" → {failed}"
            elif ex.error:
                text += " → no reply from the app"
            elif ex.status is None:
                text, problem = f"{text} … waiting for the app", False
            else:
                text += " → no result for this call"
            self._put(ex, "tool", text, detail, problem=problem)

    def _status(self, ex: Exchange, msg: dict[str, Any]) -> None:
        text = summarize(ex, self.mask)
        if msg.get("destination") is not None:  # forwarding
            text += f" → {_destination(msg['destination'], self.mask)}"
        self._put(ex, "status", text)

    def _transfer(self, ex: Exchange, msg: dict[str, Any]) -> None:
        m, mtype, problem = self.mask, ex.message_type or "", False
        if mtype == "transfer-update":
            to = as_dict(msg.get("toAssistant")).get("name")
            text = f"transferred → {_destination(msg.get('destination'), m)}"
            text += f" (assistant {_short(to, 40, m)})" if isinstance(to, str) else ""
        elif mtype == "phone-call-control":
            dest = msg.get("destination")
            text = _short(str(msg.get("request", "?")), 20, m) + (f" → {_destination(dest, m)}" if dest else "")
        else:  # a destination (or handoff) request: what did the app answer?
            text = ("handoff" if mtype.startswith("handoff") else "destination") + " requested"
            failed, dest = _failed(ex, m), _reply_of(ex).get("destination")
            if failed or dest is not None:
                text, problem = f"{text} → {failed or _destination(dest, m)}", bool(failed)
            elif ex.status is None and not ex.error:
                text += " … waiting for the app"
            else:
                text, problem = f"{text} → no destination in the reply", True
        self._put(ex, "transfer", text, problem=problem)

    def _report(self, ex: Exchange, msg: dict[str, Any]) -> None:
        analysis = as_dict(msg.get("analysis"))
        said = analysis.get("summary", msg.get("summary"))
        detail = _short(said, DETAIL_LIMIT, self.mask) if isinstance(said, str) else ""
        verdict = analysis.get("successEvaluation")
        if verdict is not None:
            detail += (" · " if detail else "") + f"success: {_short(verdict, 40, self.mask)}"
        self._put(ex, "summary", _short(end_of_call_summary(msg), TEXT_LIMIT, self.mask), detail)


_Build = Callable[[_Builder, Exchange, dict[str, Any]], None]
_BUILDERS: dict[str, _Build] = {
    "transcript": _Builder._transcript,
    "conversation-update": _Builder._conversation,
    "tool-calls": _Builder._tools,
    "function-call": _Builder._tools,
    "status-update": _Builder._status,
    "transfer-destination-request": _Builder._transfer,
    "handoff-destination-request": _Builder._transfer,
    "transfer-update": _Builder._transfer,
    "phone-call-control": _Builder._transfer,
    "end-of-call-report": _Builder._report,
}


def timeline(exchanges: Sequence[Exchange], mask: Masker) -> list[Entry]:
    """The timeline of one call's exchanges (in the order given), masked by ``mask``; linear in their number."""
    builder = _Builder(mask, transcripts=any(ex.message_type == "transcript" for ex in exchanges))
    for ex in exchanges:
        builder.add(ex)
    return builder.entries()
