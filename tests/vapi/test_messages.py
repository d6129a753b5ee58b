"""The Vapi type table and message readers."""

from __future__ import annotations

import pytest

from vapi_dev.vapi import messages as vapi
from vapi_dev.vapi import summary

PAYLOAD_TYPES = """assistant-request conversation-update end-of-call-report handoff-destination-request hang
knowledge-base-request model-output phone-call-control speech-update status-update tool-calls
transfer-destination-request transfer-update transcript user-interrupted language-change-detected voice-input
assistant.speechStarted voice-request call.endpointing.request chat.created chat.deleted session.created
session.updated session.deleted call.deleted call.delete.failed call.artifact.upload campaign.predial""".split()


def test_table_covers_every_payload_type_and_legacy_function_call() -> None:
    assert len(PAYLOAD_TYPES) == 29
    assert set(PAYLOAD_TYPES) | {"function-call"} <= set(vapi.MESSAGE_TYPES)
    waits = {n for n, t in vapi.MESSAGE_TYPES.items() if t.reply_needed}
    assert waits == {
        "assistant-request",
        "tool-calls",
        "function-call",
        "transfer-destination-request",
        "handoff-destination-request",
        "knowledge-base-request",
        "voice-request",
        "call.endpointing.request",
        "campaign.predial",
    }
    assert vapi.type_info("assistant-request").deadline_s == 7.5
    assert vapi.type_info("tool-calls").deadline_s is None  # the default, 20 s


def test_unknown_and_variant_types() -> None:
    assert vapi.type_info("brand-new-type").category == "other"
    assert vapi.type_info(None).reply_needed is False
    assert vapi.type_info('transcript[transcriptType="final"]').name == "transcript"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"message": {"type": "status-update", "call": {"id": "c1"}}}, ("status-update", "c1")),
        ({"type": "tool-calls", "call": {"id": "c2"}}, ("tool-calls", "c2")),  # no envelope
        ({"message": {"type": "chat.created", "chat": {"id": "chat_1"}}}, ("chat.created", "chat_1")),
        ({"message": {"type": "session.created", "session": {"id": "s1"}}}, ("session.created", "s1")),
        ({"message": {"nothing": 1}}, (None, None)),
        ([1, 2], (None, None)),
        ("text", (None, None)),
    ],
)
def test_read_message(payload: object, expected: tuple[str | None, str | None]) -> None:
    assert vapi.read_message(payload) == expected


@pytest.mark.parametrize(
    "message",
    [
        {"toolCallList": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}]},
        {"toolCallList": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}]},
        {
            "toolWithToolCallList": [
                {
                    "type": "function",
                    "function": {"name": "f"},
                    "toolCall": {"id": "t1", "function": {"name": "f", "arguments": {"a": 1}}},
                }
            ]
        },
        {"toolCalls": [{"id": "t1", "function": {"name": "f", "arguments": {"a": 1}}}]},
        {"toolCallList": [{"id": "t1", "name": "f", "parameters": {"a": 1}}]},
    ],
)
def test_tool_calls_in_every_shape(message: dict[str, object]) -> None:
    calls = vapi.tool_calls({"message": {"type": "tool-calls", **message}})
    assert calls == [vapi.ToolCall("t1", "f", {"a": 1})]


def test_legacy_function_call() -> None:
    calls = vapi.tool_calls(
        {"message": {"type": "function-call", "functionCall": {"name": "g", "parameters": {"x": "y"}}}}
    )
    assert calls == [vapi.ToolCall("", "g", {"x": "y"})]


def test_end_of_call_summary_reads_both_places() -> None:
    msg = {
        "endedReason": "customer-ended-call",
        "startedAt": "2025-01-01T12:00:01.000Z",
        "endedAt": "2025-01-01T12:01:40.000Z",
        "cost": 0.12,
        "artifact": {"recordingUrl": "https://r.example/x.wav"},
    }
    assert summary.end_of_call_summary(msg) == "customer-ended-call · 99 s · $0.12 · https://r.example/x.wav"
    legacy = {"durationSeconds": 30, "recordingUrl": "https://r.example/y.wav", "call": {"endedReason": "hangup"}}
    assert summary.end_of_call_summary(legacy) == "hangup · 30 s · https://r.example/y.wav"
