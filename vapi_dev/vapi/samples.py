"""Realistic sample payloads for every Vapi server message type, and `--set PATH=VALUE` edits.

Each sample validates against its model in Vapi's official Python SDK (vapi-server-sdk 3.0.0,
`vapi.types.server_message_*`; tests/vapi/test_samples.py checks it), except where SDK_DEVIATIONS says why not.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from datetime import datetime, timezone
from typing import Any

from vapi_dev.errors import ExitStatus, VapiDevError
from vapi_dev.vapi.messages import MESSAGE_TYPES, normalise_type

SAMPLE_TYPES: list[str] = list(MESSAGE_TYPES)

# Where a sample knowingly does not validate against the SDK (3.0.0), and why.
SDK_DEVIATIONS: dict[str, str] = {
    "tool-calls": (
        "function.arguments is an object, as Vapi's guides and real traffic send it in toolCallList; the SDK "
        "types it as a JSON string. sample(..., args_as_string=True) (trigger --args-as-string) sends the string."
    ),
    "function-call": (
        "legacy predecessor of tool-calls, with no SDK model; the shape (functionCall {name, parameters}) is "
        "VapiAI/server-example-python-flask's. Its envelope uses the same SDK types as tool-calls."
    ),
}

ORG_ID = "6d3c1b7e-0000-4000-8000-00000000a001"
ASSISTANT_ID = "0f9a6c2e-0000-4000-8000-00000000a002"
PHONE_NUMBER_ID = "a1b2c3d4-0000-4000-8000-00000000a003"
TOOL_CALL_ID = "call_Xq2v9ZkLm3Np"
CAMPAIGN_ID = "c0ffee00-0000-4000-8000-00000000a004"
CONTACT_ID = "9a32ab38-0000-4000-8000-00000000a005"
CUSTOMER = {"number": "+15555550100", "name": "Sam Caller"}
ASSISTANT = {
    "name": "Weather bot",
    "firstMessage": "Hi, how can I help?",
    "model": {
        "provider": "openai",
        "model": "gpt-4o",
        "messages": [{"role": "system", "content": "You are a weather bot."}],
    },
    "voice": {"provider": "11labs", "voiceId": "burt"},
    "transcriber": {"provider": "deepgram", "model": "nova-2", "language": "en"},
    "server": {"url": "https://example.ngrok.app/webhook", "timeoutSeconds": 20},
}
PHONE_NUMBER = {
    "id": PHONE_NUMBER_ID,
    "orgId": ORG_ID,
    "provider": "vapi",
    "number": "+15555550199",
    "name": "Support line",
}
WEATHER_ARGS = {"city": "Paris"}
CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "message": "You are a weather bot.", "time": 0, "secondsFromStart": 0},
    {"role": "bot", "message": "Hi, how can I help?", "time": 500, "endTime": 2000, "secondsFromStart": 0.5},
    {"role": "user", "message": "What's the weather in Paris?", "time": 3000, "endTime": 5000, "secondsFromStart": 3.0},
]
OPENAI_MESSAGES = [
    {"role": "system", "content": "You are a weather bot."},
    {"role": "assistant", "content": "Hi, how can I help?"},
    {"role": "user", "content": "What's the weather in Paris?"},
]


class SampleError(VapiDevError, ValueError):
    """A bad message type or --set expression; ``message`` says what to do."""

    exit_status = ExitStatus.USAGE


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _messages(ts: int) -> list[dict[str, Any]]:
    out = []
    for m in CONVERSATION:
        m = dict(m)
        m["time"] = ts - 6000 + int(m["time"])
        if "endTime" in m:
            m["endTime"] = ts - 6000 + int(m["endTime"])
        out.append(m)
    return out


def _tool_call(args_as_string: bool) -> dict[str, Any]:
    args: Any = json.dumps(WEATHER_ARGS, separators=(",", ":")) if args_as_string else dict(WEATHER_ARGS)
    return {"id": TOOL_CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": args}}


def _call(call_id: str, ts: int, status: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "orgId": ORG_ID,
        "type": "inboundPhoneCall",
        "status": status,
        "createdAt": _iso(ts - 8000),
        "updatedAt": _iso(ts),
        "startedAt": _iso(ts - 6000),
        "assistantId": ASSISTANT_ID,
        "phoneNumberId": PHONE_NUMBER_ID,
        "phoneCallProvider": "vapi",
        "phoneCallTransport": "pstn",
        "phoneCallProviderId": "CA" + call_id.replace("-", "")[:32],
        "customer": dict(CUSTOMER),
        "monitor": {
            "listenUrl": f"wss://phone-call-websocket.aws-us-west-2-backend-production1.vapi.ai/{call_id}/listen",
            "controlUrl": f"https://phone-call-websocket.aws-us-west-2-backend-production1.vapi.ai/{call_id}/control",
        },
        "transport": {"provider": "vapi.sip"},
    }


def _specific(mtype: str, call_id: str, ts: int, args_as_string: bool) -> dict[str, Any]:
    """The fields that only this message type carries (vapi-protocol.md §2 and §6)."""
    tc = _tool_call(args_as_string)
    table: dict[str, dict[str, Any]] = {
        "assistant-request": {"assistantVersion": None},
        "tool-calls": {
            "toolCallList": [tc],
            "toolWithToolCallList": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                    "server": {"url": "https://example.ngrok.app/tools"},
                    "messages": [],
                    "toolCall": copy.deepcopy(tc),
                }
            ],
            "toolCalls": [copy.deepcopy(tc)],
        },
        "function-call": {"functionCall": {"name": "get_weather", "parameters": dict(WEATHER_ARGS)}},
        "transfer-destination-request": {},
        "handoff-destination-request": {"parameters": {"destination": "billing", "reason": "billing question"}},
        "knowledge-base-request": {
            "messages": [
                {"role": "user", "message": "What is your return policy?", "time": ts - 1000, "secondsFromStart": 48.0}
            ],
            "messagesOpenAIFormatted": [{"role": "user", "content": "What is your return policy?"}],
        },
        "voice-request": {"text": "Hello, world!", "sampleRate": 24000},
        "call.endpointing.request": {"messages": _messages(ts), "messagesOpenAIFormatted": OPENAI_MESSAGES},
        # As in Vapi's campaign-webhooks guide: the campaign and the contact about to be dialled.
        "campaign.predial": {
            "campaignId": CAMPAIGN_ID,
            "contact": {
                "id": CONTACT_ID,
                "campaignId": CAMPAIGN_ID,
                "orgId": ORG_ID,
                "number": CUSTOMER["number"],
                "name": CUSTOMER["name"],
                "createdAt": _iso(ts - 86_400_000),
            },
        },
        "status-update": {"status": "in-progress"},
        "end-of-call-report": {
            "endedReason": "customer-ended-call",
            "startedAt": _iso(ts - 99000),
            "endedAt": _iso(ts),
            "durationSeconds": 99.0,
            "cost": 0.12,
            "costs": [
                {
                    "type": "model",
                    "model": {"provider": "openai", "model": "gpt-4o"},
                    "promptTokens": 1200,
                    "completionTokens": 150,
                    "cost": 0.01,
                },
                {"type": "transport", "provider": "vapi", "minutes": 1.65, "cost": 0.02},
            ],
            "analysis": {
                "summary": "Caller asked about the weather.",
                "structuredData": {"intent": "weather"},
                "successEvaluation": "true",
            },
        },
        "hang": {},
        "phone-call-control": {
            "request": "forward",
            "destination": {"type": "sip", "sipUri": "sip:agent@example.invalid"},
        },
        "transfer-update": {
            "destination": {"type": "number", "number": "+15555550111"},
            "fromAssistant": copy.deepcopy(ASSISTANT),
            "toAssistant": None,
        },
        "assistant.started": {"newAssistant": copy.deepcopy(ASSISTANT)},
        "speech-update": {"status": "started", "role": "user", "turn": 1},
        "conversation-update": {"messages": _messages(ts), "messagesOpenAIFormatted": OPENAI_MESSAGES},
        "transcript": {
            "role": "user",
            "transcriptType": "final",
            "transcript": "What's the weather in Paris?",
            "isFiltered": False,
            "detectedThreats": [],
            "confidence": 0.93,
            "confidenceSource": "provider",
        },
        # The SDK types output as an object ("a token or tool call") and names no fields: a token as
        # {"content": ...} is our reading. `--set 'message.output="Sunny"'` sends a bare string instead.
        "model-output": {"output": {"content": "Sunny"}, "turnId": "turn_3"},
        "user-interrupted": {"turnId": "turn_3"},
        "language-change-detected": {"language": "es"},
        "voice-input": {"input": "It is sunny and 21 degrees in Paris."},
        "assistant.speechStarted": {
            "text": "It is sunny and 21 degrees in Paris.",
            "turn": 2,
            "source": "model",
            # word-alignment is what ElevenLabs voices (the sample assistant's) send: one audio segment,
            # spaces included, times in ms from the segment's start.
            "timing": {
                "type": "word-alignment",
                "words": ["It", " ", "is", " ", "sunny"],
                "wordsStartTimesMs": [0, 140, 170, 300, 330],
                "wordsEndTimesMs": [140, 170, 300, 330, 720],
            },
        },
        "chat.created": {"chat": _resource(call_id, ts, ts, messages=[])},
        "chat.deleted": {"chat": _resource(call_id, ts - 60_000, ts)},
        "session.created": {"session": _resource(call_id, ts, ts, status="active")},
        "session.updated": {"session": _resource(call_id, ts - 60_000, ts, status="active")},
        "session.deleted": {"session": _resource(call_id, ts - 120_000, ts, status="completed")},
        "call.deleted": {},
        "call.delete.failed": {"error": "Call recording could not be deleted."},
        # One entry per artifact written to your own storage (the SDK's CallArtifactUploadItem).
        "call.artifact.upload": {
            "artifacts": [
                {"type": "recording-mono", "success": True},
                {"type": "recording-stereo", "success": True},
                {"type": "log", "success": True},
            ]
        },
    }
    return copy.deepcopy(table[mtype])


def _resource(rid: str, created_ms: int, updated_ms: int, **fields: Any) -> dict[str, Any]:
    """A chat or session as Vapi's API returns it: ids, assistant, both timestamps."""
    out = {"id": rid, "orgId": ORG_ID, "assistantId": ASSISTANT_ID, **fields}
    out.update({"createdAt": _iso(created_ms), "updatedAt": _iso(updated_ms)})
    return out


def _artifact(call_id: str, ts: int, full: bool) -> dict[str, Any]:
    art: dict[str, Any] = {
        "messages": _messages(ts),
        "messagesOpenAIFormatted": OPENAI_MESSAGES,
        "transcript": "AI: Hi, how can I help?\nUser: What's the weather in Paris?",
    }
    if full:
        base = f"https://storage.vapi.ai/{call_id}"
        art.update(
            {
                "recordingUrl": f"{base}-mono.wav",
                "stereoRecordingUrl": f"{base}-stereo.wav",
                "recording": {"mono": {"combinedUrl": f"{base}-mono.wav"}, "stereoUrl": f"{base}-stereo.wav"},
                "logUrl": f"{base}-log.gz",
            }
        )
    return art


def sample(
    message_type: str,
    call_id: str | None = None,
    *,
    timestamp_ms: int | None = None,
    call_status: str | None = None,
    args_as_string: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """A full Vapi envelope ``{"message": {...}}`` for ``message_type``.

    ``fields`` override keys of ``message``; ``call_status`` sets ``message.call.status``;
    ``args_as_string`` sends tool-call ``arguments`` as a JSON string, as the SDK types them (SDK_DEVIATIONS).
    """
    name = normalise_type(message_type)
    if name not in MESSAGE_TYPES:
        raise SampleError(f"unknown message type {message_type!r}; `vapi-dev trigger --list` shows them all.")
    call_id = call_id or str(uuid.uuid4())
    ts = timestamp_ms if timestamp_ms is not None else int(time.time() * 1000)
    ended = name in ("end-of-call-report", "call.deleted", "call.delete.failed", "call.artifact.upload")
    first = {"assistant-request": "ringing", "campaign.predial": "queued"}.get(name, "in-progress")
    status = call_status or ("ended" if ended else first)
    call = _call(call_id, ts, status)
    msg: dict[str, Any] = {"type": message_type, "timestamp": ts, "call": call}
    if name == "assistant-request":
        # Sent before any assistant exists: no assistant, no artifact yet.
        call.pop("assistantId")
        msg.update({"phoneNumber": dict(PHONE_NUMBER), "customer": dict(CUSTOMER)})
    elif name == "campaign.predial":
        # Before the contact is dialled: an outbound call of the campaign, queued, with nothing said yet.
        for key in ("startedAt", "phoneCallProviderId"):
            call.pop(key)
        call.update({"type": "outboundPhoneCall", "campaignId": CAMPAIGN_ID})
        msg.update(
            {"assistant": copy.deepcopy(ASSISTANT), "customer": dict(CUSTOMER), "phoneNumber": dict(PHONE_NUMBER)}
        )
    else:
        msg.update(
            {
                "assistant": copy.deepcopy(ASSISTANT),
                "customer": dict(CUSTOMER),
                "phoneNumber": dict(PHONE_NUMBER),
                "artifact": _artifact(call_id, ts, ended),
            }
        )
    if ended:
        call["endedReason"] = "customer-ended-call"
        call["endedAt"] = _iso(ts)
    msg.update(_specific(name, call_id, ts, args_as_string))
    if name == "status-update" and msg["status"] == "ended":
        msg["endedReason"] = "customer-ended-call"
    msg.update(fields)
    return {"message": msg}


def call_sequence(
    call_id: str | None = None, *, start_ms: int | None = None, args_as_string: bool = False
) -> list[dict[str, Any]]:
    """A whole call, in order, with one call id and rising timestamps (for `trigger call`)."""
    cid = call_id or str(uuid.uuid4())
    t0 = start_ms if start_ms is not None else int(time.time() * 1000)
    steps: list[tuple[str, int, dict[str, Any]]] = [
        ("status-update", 0, {"call_status": "ringing", "status": "ringing"}),
        ("status-update", 1000, {"status": "in-progress"}),
        ("speech-update", 2000, {"status": "started", "role": "user", "turn": 1}),
        ("transcript", 4000, {}),
        ("conversation-update", 4500, {}),
        ("tool-calls", 5000, {}),
        ("status-update", 60000, {"call_status": "ended", "status": "ended"}),
        ("end-of-call-report", 61000, {}),
    ]
    return [sample(t, cid, timestamp_ms=t0 + dt, args_as_string=args_as_string, **kw) for t, dt, kw in steps]


def _parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw  # not JSON: a plain string


def apply_set(payload: Any, expr: str) -> Any:
    """Apply ``a.b.0.c=VALUE`` (VALUE parsed as JSON, else a string) in place; returns the payload."""
    path, sep, raw = expr.partition("=")
    if not sep or not path.strip():
        raise SampleError(f"--set {expr!r} is not PATH=VALUE (for example message.call.id=abc).")
    keys = path.strip().split(".")
    node = payload
    for i, key in enumerate(keys):
        last = i == len(keys) - 1
        where = ".".join(keys[: i + 1])
        if isinstance(node, list):
            if not key.isdigit() or int(key) > len(node):
                raise SampleError(f"--set {path}: {where} is not an index of a {len(node)}-item list.")
            idx = int(key)
            if last:
                if idx == len(node):
                    node.append(_parse_value(raw))
                else:
                    node[idx] = _parse_value(raw)
                return payload
            if idx == len(node):
                node.append({})
            node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[key] = _parse_value(raw)
                return payload
            if key not in node or node[key] is None:
                node[key] = {}
            node = node[key]
        else:
            parent = ".".join(keys[:i])
            raise SampleError(f"--set {path}: {parent} is a {type(node).__name__}, not an object.")
    return payload
