"""Facts about Vapi server messages: the type table (reply needed? deadline?), reading type, call id and tool calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vapi_dev.exchange import Exchange

ASSISTANT_REQUEST_DEADLINE_S = 7.5  # fixed by Vapi, not configurable

CATEGORIES = ("lifecycle", "conversation", "reply", "error", "other")


@dataclass(frozen=True)
class TypeInfo:
    name: str
    category: str  # one of CATEGORIES
    reply_needed: bool
    deadline_s: float | None  # None: the default deadline
    chatty: bool
    description: str


def _t(
    name: str,
    category: str,
    description: str,
    *,
    reply: bool = False,
    chatty: bool = False,
    deadline: float | None = None,
) -> TypeInfo:
    return TypeInfo(name, category, reply, deadline, chatty, description)


# Every server message type (vapi-protocol.md §2): 29 payload types, legacy function-call, and
# assistant.started (listed in serverMessages, payload documented only as a client message).
MESSAGE_TYPES: dict[str, TypeInfo] = {
    t.name: t
    for t in (
        _t(
            "assistant-request",
            "reply",
            "inbound call needs an assistant",
            reply=True,
            deadline=ASSISTANT_REQUEST_DEADLINE_S,
        ),
        _t("tool-calls", "reply", "the model called tools", reply=True),
        _t("function-call", "reply", "legacy function call", reply=True),
        _t("transfer-destination-request", "reply", "transfer needs a destination", reply=True),
        _t("handoff-destination-request", "reply", "handoff needs a destination", reply=True),
        _t("knowledge-base-request", "reply", "custom knowledge base lookup", reply=True),
        _t("voice-request", "reply", "custom voice needs audio", reply=True),
        _t("call.endpointing.request", "reply", "custom endpointing decision", reply=True),
        _t("campaign.predial", "reply", "campaign pre-dial eligibility", reply=True),
        _t("status-update", "lifecycle", "call status changed"),
        _t("end-of-call-report", "lifecycle", "call ended, report ready"),
        _t("hang", "error", "assistant stalled"),
        _t("phone-call-control", "lifecycle", "your server controls hang-up/forward"),
        _t("transfer-update", "lifecycle", "a transfer happened"),
        _t("assistant.started", "lifecycle", "assistant started"),
        _t("speech-update", "conversation", "someone started or stopped speaking", chatty=True),
        _t("conversation-update", "conversation", "conversation history updated", chatty=True),
        _t("transcript", "conversation", "speech-to-text transcript", chatty=True),
        _t("model-output", "conversation", "model token or tool-call stream", chatty=True),
        _t("user-interrupted", "conversation", "the user barged in"),
        _t("language-change-detected", "conversation", "transcriber switched language"),
        _t("voice-input", "conversation", "text sent to the voice provider", chatty=True),
        _t("assistant.speechStarted", "conversation", "assistant audio started", chatty=True),
        _t("chat.created", "lifecycle", "chat created"),
        _t("chat.deleted", "lifecycle", "chat deleted"),
        _t("session.created", "lifecycle", "session created"),
        _t("session.updated", "lifecycle", "session updated"),
        _t("session.deleted", "lifecycle", "session deleted"),
        _t("call.deleted", "lifecycle", "call deleted"),
        _t("call.delete.failed", "error", "call deletion failed"),
        _t("call.artifact.upload", "lifecycle", "call artifact uploaded"),
    )
}

_GENERIC = TypeInfo("unknown", "other", False, None, False, "not a Vapi message type we know")


def normalise_type(raw: str) -> str:
    """Map variants onto table names: 'transcript[transcriptType="final"]' → 'transcript'."""
    if raw.startswith("transcript["):
        return "transcript"
    return raw


def type_info(name: str | None) -> TypeInfo:
    if name is None:
        return _GENERIC
    return MESSAGE_TYPES.get(normalise_type(name), _GENERIC)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def message_of(payload: Any) -> dict[str, Any]:
    """Vapi's envelope is {"message": {...}}; fall back to the payload itself."""
    if isinstance(payload, dict):
        inner = payload.get("message")
        if isinstance(inner, dict):
            return inner
        return payload
    return {}


def read_message(payload: Any) -> tuple[str | None, str | None]:
    """(message_type, call_id) from a parsed body; (None, None) when it is not a Vapi message."""
    if not isinstance(payload, dict):
        return None, None
    msg = message_of(payload)
    mtype = msg.get("type")
    if not isinstance(mtype, str) or not mtype:
        mtype = payload.get("type") if isinstance(payload.get("type"), str) else None
    call_id: str | None = None
    for key in ("call", "chat", "session"):
        obj = msg.get(key)
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            call_id = obj["id"]
            break
    if call_id is None:
        for key in ("callId", "chatId", "sessionId"):
            if isinstance(msg.get(key), str):
                call_id = msg[key]
                break
    return (mtype or None), call_id


def raw_type(ex: Exchange) -> str | None:
    """message.type as Vapi sent it (e.g. 'transcript[transcriptType="final"]').

    Exchange.message_type is normalised; outputs that record the type (NDJSON, journal, fixtures) keep
    the spelling Vapi used, so a filter on it keeps working.
    """
    if ex.message_type is None:
        return None
    raw = read_message(ex.payload)[0]
    return raw if raw and normalise_type(raw) == ex.message_type else ex.message_type


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: Any  # dict when parseable, otherwise whatever was sent


def _parse_args(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _one_call(item: Any) -> ToolCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("toolCall"), dict):  # toolWithToolCallList entry
        return _one_call(item["toolCall"])
    fn = as_dict(item.get("function")) or item
    name = fn.get("name")
    args = fn.get("arguments", fn.get("parameters", {}))
    cid = item.get("id")
    return ToolCall(cid if isinstance(cid, str) else "", name if isinstance(name, str) else "", _parse_args(args))


def tool_calls(payload: Any) -> list[ToolCall]:
    """Tool calls in a tool-calls (or legacy function-call) message, whatever shape they came in."""
    msg = message_of(payload)
    for key in ("toolCallList", "toolWithToolCallList", "toolCalls"):
        items = msg.get(key)
        if isinstance(items, list) and items:
            return [c for c in (_one_call(i) for i in items) if c is not None]
    fc = msg.get("functionCall")
    if isinstance(fc, dict):
        return [ToolCall("", str(fc.get("name", "")), _parse_args(fc.get("parameters", {})))]
    return []
