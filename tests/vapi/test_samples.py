"""Sample payloads: every type has Vapi's envelope and the right type, and validates against its model in
Vapi's official Python SDK (vapi-server-sdk, the test extra); --set edits; a whole call."""

from __future__ import annotations

import json
import typing
from typing import Any

import pytest

from vapi_dev.vapi.messages import MESSAGE_TYPES, read_message, tool_calls
from vapi_dev.vapi.samples import (
    SAMPLE_TYPES,
    SDK_DEVIATIONS,
    WEATHER_ARGS,
    SampleError,
    apply_set,
    call_sequence,
    sample,
)

FINAL_TRANSCRIPT = 'transcript[transcriptType="final"]'
TS = 1_735_732_800_000


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
        assert msg["assistant"]["name"]
    if mtype not in ("assistant-request", "campaign.predial"):  # nothing said yet
        assert isinstance(msg["artifact"]["messages"], list)
    assert read_message(json.loads(json.dumps(payload))) == (mtype, "call-42")


def test_type_specific_fields() -> None:
    calls = tool_calls(sample("tool-calls"))
    assert calls and calls[0].name == "get_weather" and calls[0].arguments == {"city": "Paris"}
    assert tool_calls(sample("function-call"))[0].name == "get_weather"
    assert sample("assistant-request")["message"]["call"]["status"] == "ringing"
    assert sample("end-of-call-report")["message"]["call"]["status"] == "ended"
    predial = sample("campaign.predial")["message"]
    assert predial["call"]["status"] == "queued" and predial["call"]["type"] == "outboundPhoneCall"
    assert predial["contact"]["number"] == predial["customer"]["number"]
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


# --- against the official SDK -------------------------------------------------------------------


def _literals(annotation: Any) -> list[str]:
    """The strings of a Fern type annotation: Union[Literal["tool-calls"], Any] → ["tool-calls"]."""
    if typing.get_origin(annotation) is typing.Literal:
        return [a for a in typing.get_args(annotation) if isinstance(a, str)]
    return [name for arg in typing.get_args(annotation) for name in _literals(arg)]


@pytest.fixture(scope="module")
def sdk_models() -> dict[str, Any]:
    """Message type → its SDK model, read from the SDK's own ServerMessage union (the import takes ~25 s)."""
    from vapi.types.client_message_assistant_started import ClientMessageAssistantStarted
    from vapi.types.server_message_message import ServerMessageMessage

    models: dict[str, Any] = {}
    for model in typing.get_args(ServerMessageMessage):
        for name in _literals(model.model_fields["type"].annotation):
            models[name] = model
    # In serverMessages, but the SDK models its payload only as a client message.
    models["assistant.started"] = ClientMessageAssistantStarted
    return models


def _errors(model: Any, msg: dict[str, Any]) -> list[str]:
    """What the SDK model says is wrong with ``msg`` as it goes over the wire (a JSON round trip)."""
    import pydantic

    try:
        model.model_validate(json.loads(json.dumps(msg)))
    except pydantic.ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return []


def test_sdk_models_are_the_sample_types(sdk_models: dict[str, Any]) -> None:
    # Every SDK server message has a sample and every sample but legacy function-call has a model,
    # so a new SDK type, or a sample the SDK dropped, shows up here.
    assert set(sdk_models) == (set(SAMPLE_TYPES) - {"function-call"}) | {FINAL_TRANSCRIPT}
    assert "function-call" in SDK_DEVIATIONS


@pytest.mark.parametrize("mtype", [*SAMPLE_TYPES, FINAL_TRANSCRIPT])
def test_sample_validates_against_its_sdk_model(mtype: str, sdk_models: dict[str, Any]) -> None:
    msg = sample(mtype, "call-42", timestamp_ms=TS)["message"]
    if mtype == "function-call":  # no SDK model: the envelope as tool-calls types it, then the legacy body
        assert _errors(sdk_models["tool-calls"], {**msg, "toolCallList": [], "toolWithToolCallList": []}) == []
        assert msg["functionCall"] == {"name": "get_weather", "parameters": WEATHER_ARGS}
        return
    model = sdk_models[mtype]
    if mtype in SDK_DEVIATIONS:  # tool-calls: arguments as objects by default, strings on request
        assert _errors(model, msg), f"{mtype} now validates: drop it from SDK_DEVIATIONS"
        msg = sample(mtype, "call-42", timestamp_ms=TS, args_as_string=True)["message"]
    assert _errors(model, msg) == []


def test_args_as_string_changes_only_the_arguments() -> None:
    objects = sample("tool-calls", "c1", timestamp_ms=TS)
    strings = sample("tool-calls", "c1", timestamp_ms=TS, args_as_string=True)
    m = strings["message"]
    calls = [*m["toolCallList"], *m["toolCalls"], *(t["toolCall"] for t in m["toolWithToolCallList"])]
    assert len(calls) == 3
    for c in calls:
        assert c["function"]["arguments"] == '{"city":"Paris"}'  # compact, as OpenAI-style models emit it
        c["function"]["arguments"] = json.loads(c["function"]["arguments"])
    assert strings == objects
    assert tool_calls(sample("tool-calls", args_as_string=True))[0].arguments == WEATHER_ARGS
    seq = call_sequence("c1", start_ms=TS, args_as_string=True)
    step = next(p for p in seq if p["message"]["type"] == "tool-calls")
    assert step["message"]["toolCallList"][0]["function"]["arguments"] == '{"city":"Paris"}'
