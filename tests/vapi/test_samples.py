"""Sample payloads: every type has Vapi's envelope and the right type; --set edits; a whole call."""

from __future__ import annotations

import json

import pytest

from vapi_dev.vapi.messages import MESSAGE_TYPES, read_message, tool_calls
from vapi_dev.vapi.samples import SAMPLE_TYPES, SampleError, apply_set, call_sequence, sample


def test_sample_types_cover_the_protocol() -> None:
    assert set(SAMPLE_TYPES) == set(MESSAGE_TYPES)
    assert len(SAMPLE_TYPES) == 31  # 29 payload types + function-call + assistant.started


@pytest.mark.parametrize("mtype", SAMPLE_TYPES)
def test_every_type_has_the_envelope(mtype: str) -> None:
    payload = sample(mtype, "call-42")
    assert list(payload) == ["message"]
    msg = payload["message"]
    assert msg["type"] == mtype
    assert isinstance(msg["timestamp"], int) and msg["timestamp"] > 1_600_000_000_000  # epoch ms
    call = msg["call"]
    for key in ("id", "orgId", "type", "status", "createdAt", "phoneNumberId", "customer", "monitor"):
        assert key in call, key
    assert msg["customer"]["number"] and msg["phoneNumber"]["id"]
    if mtype != "assistant-request":  # sent before an assistant exists
        assert msg["assistant"]["name"] and isinstance(msg["artifact"]["messages"], list)
    assert read_message(json.loads(json.dumps(payload))) == (mtype, "call-42")


def test_type_specific_fields() -> None:
    calls = tool_calls(sample("tool-calls"))
    assert calls and calls[0].name == "get_weather" and calls[0].arguments == {"city": "Paris"}
    assert tool_calls(sample("function-call"))[0].name == "get_weather"
    assert sample("assistant-request")["message"]["call"]["status"] == "ringing"
    assert sample("end-of-call-report")["message"]["call"]["status"] == "ended"
    assert sample("voice-request")["message"]["sampleRate"] == 24000
    literal = 'transcript[transcriptType="final"]'
    assert sample(literal)["message"]["type"] == literal
    with pytest.raises(SampleError, match="trigger --list"):
        sample("nope")


def test_apply_set() -> None:
    p = sample("tool-calls", "c1")
    apply_set(p, 'message.toolCallList.0.function.arguments={"city":"Oslo"}')
    assert p["message"]["toolCallList"][0]["function"]["arguments"] == {"city": "Oslo"}
    apply_set(p, "message.call.id=abc")
    apply_set(p, "message.new.deep=1")
    apply_set(p, "message.toolCallList.1=null")
    apply_set(p, "message.note=hello world")
    assert p["message"]["call"]["id"] == "abc"
    assert p["message"]["new"] == {"deep": 1}
    assert p["message"]["toolCallList"][1] is None
    assert p["message"]["note"] == "hello world"
    for bad in ("message.call.id", "=x", "message.toolCallList.9=1", "message.type.x=1", "message.toolCallList.x=1"):
        with pytest.raises(SampleError):
            apply_set(p, bad)


def test_call_sequence() -> None:
    seq = call_sequence("call-7", start_ms=1_735_732_800_000)
    types = [m["message"]["type"] for m in seq]
    assert types == [
        "status-update",
        "status-update",
        "speech-update",
        "transcript",
        "conversation-update",
        "tool-calls",
        "status-update",
        "end-of-call-report",
    ]
    assert {m["message"]["call"]["id"] for m in seq} == {"call-7"}
    stamps = [m["message"]["timestamp"] for m in seq]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert [m["message"]["status"] for m in seq if m["message"]["type"] == "status-update"] == [
        "ringing",
        "in-progress",
        "ended",
    ]
    assert seq[0]["message"]["call"]["status"] == "ringing"
    assert seq[-1]["message"]["call"]["status"] == "ended"
