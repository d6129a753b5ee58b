"""Reply-contract checks for every reply-needed Vapi type, deadline warnings and fallback replies; how
redirects and failed replies are reported and summarised."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.exchanges import make_exchange
from vapi_dev.exchange import Exchange
from vapi_dev.vapi.contracts import check_reply, fallback_reply
from vapi_dev.vapi.summary import LOCATION_SHOWN, redirect_of, redirect_shown, summarize

JSON_CT = [("Content-Type", "application/json; charset=utf-8")]


def tool_payload(shape: str = "toolCallList", ids: tuple[str, ...] = ("tc_1",)) -> dict[str, Any]:
    calls: list[dict[str, Any]]
    if shape == "toolCallList":
        msg: dict[str, Any] = {
            "toolCallList": [
                {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
                for i in ids
            ]
        }
    elif shape == "string-args":
        msg = {
            "toolCallList": [
                {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
                for i in ids
            ]
        }
    elif shape == "toolWithToolCallList":
        calls = [
            {
                "type": "function",
                "function": {"name": "get_weather"},
                "toolCall": {
                    "id": i,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
            }
            for i in ids
        ]
        msg = {"toolWithToolCallList": calls}
    elif shape == "toolCalls":
        msg = {"toolCalls": [{"id": i, "name": "get_weather", "parameters": {"city": "Paris"}} for i in ids]}
    else:
        raise AssertionError(shape)
    msg.update({"type": "tool-calls", "call": {"id": "call_1"}})
    return {"message": msg}


PAYLOADS: dict[str, dict[str, Any]] = {
    "tool-calls": tool_payload(ids=("tc_1", "tc_2")),
    "function-call": {
        "message": {"type": "function-call", "functionCall": {"name": "lookup", "parameters": {"q": "x"}}}
    },
    "assistant-request": {"message": {"type": "assistant-request", "call": {"id": "call_1"}}},
    "transfer-destination-request": {"message": {"type": "transfer-destination-request"}},
    "handoff-destination-request": {"message": {"type": "handoff-destination-request", "parameters": {}}},
    "knowledge-base-request": {"message": {"type": "knowledge-base-request", "messages": []}},
    "call.endpointing.request": {"message": {"type": "call.endpointing.request"}},
    "campaign.predial": {"message": {"type": "campaign.predial"}},
    "voice-request": {"message": {"type": "voice-request", "text": "hi", "sampleRate": 24000}},
}


def make(
    mtype: str,
    reply: Any = None,
    *,
    status: int | None = 200,
    raw: bytes | None = None,
    payload: Any = None,
    headers: list[tuple[str, str]] | None = None,
    took_s: float = 0.1,
) -> Exchange:
    """An exchange of ``mtype`` with the small request payloads above and a JSON-labelled reply."""
    return make_exchange(
        mtype,
        reply,
        status=status,
        raw=raw,
        payload=payload if payload is not None else PAYLOADS.get(mtype, {"message": {"type": mtype}}),
        response_headers=JSON_CT if headers is None else headers,
        took_s=took_s,
    )


def codes(ex: Exchange) -> list[str]:
    return sorted(p.code for p in check_reply(ex))


GOOD: list[tuple[str, Any]] = [
    (
        "tool-calls",
        {
            "results": [
                {"toolCallId": "tc_1", "name": "get_weather", "result": "Sunny"},
                {"toolCallId": "tc_2", "error": "Weather service down"},
            ]
        },
    ),
    ("tool-calls", {"error": "tools are down"}),
    (
        "tool-calls",
        {
            "messageResponse": {
                "results": [{"toolCallId": "tc_1", "result": "a"}, {"toolCallId": "tc_2", "result": "b"}]
            }
        },
    ),
    ("function-call", {"result": "done"}),
    ("assistant-request", {"assistantId": "asst_1"}),
    ("assistant-request", {"assistant": {"firstMessage": "Hi"}, "assistantOverrides": {"x": 1}}),
    ("assistant-request", {"squadId": "sq_1"}),
    ("assistant-request", {"squad": {"members": []}}),
    ("assistant-request", {"workflowId": "wf_1"}),
    ("assistant-request", {"workflow": {"nodes": []}}),
    ("assistant-request", {"destination": {"type": "number", "number": "+15555550111"}}),
    ("assistant-request", {"error": "Sorry, we are closed."}),
    ("assistant-request", {"messageResponse": {"assistantId": "asst_1"}}),
    (
        "transfer-destination-request",
        {
            "destination": {"type": "number", "number": "+1555"},
            "message": {"type": "request-start", "content": "Transferring"},
        },
    ),
    ("transfer-destination-request", {"error": "no agent available"}),
    ("handoff-destination-request", {"destination": {"type": "assistant", "assistantName": "B"}}),
    ("handoff-destination-request", {"error": "no"}),
    ("knowledge-base-request", {"documents": [{"content": "30 days", "similarity": 0.92, "uuid": "d"}]}),
    ("knowledge-base-request", {"documents": [{"content": "30 days", "similarity": 1}]}),
    ("knowledge-base-request", {"message": {"role": "assistant", "content": "You have 30 days."}}),
    ("knowledge-base-request", {"documents": []}),
    ("call.endpointing.request", {"timeoutSeconds": 0.5}),
    ("call.endpointing.request", {"timeoutSeconds": 2}),
    ("campaign.predial", {"eligible": True}),
    ("campaign.predial", {"eligible": False}),
]


@pytest.mark.parametrize(("mtype", "reply"), GOOD)
def test_good_replies_have_no_problems(mtype: str, reply: Any) -> None:
    assert check_reply(make(mtype, reply)) == []


@pytest.mark.parametrize("shape", ["toolCallList", "string-args", "toolWithToolCallList", "toolCalls"])
def test_tool_call_request_shapes(shape: str) -> None:
    payload = tool_payload(shape, ids=("a", "b"))
    good = {"results": [{"toolCallId": "a", "result": "1"}, {"toolCallId": "b", "result": "2"}]}
    assert codes(make("tool-calls", good, payload=payload)) == []
    partial = {"results": [{"toolCallId": "a", "result": "1"}]}
    assert codes(make("tool-calls", partial, payload=payload)) == ["tool-calls.missing-result"]


def test_voice_request_raw_audio_is_fine() -> None:
    ex = make("voice-request", raw=b"\x00\x01" * 100, headers=[("Content-Type", "application/octet-stream")])
    assert check_reply(ex) == []


T = "tool-calls"
BAD: list[tuple[str, Any, list[str]]] = [
    (T, {"results": {"toolCallId": "tc_1", "result": "x"}}, [f"{T}.results-not-array"]),
    (T, {"result": "x"}, [f"{T}.missing-results"]),
    (T, {"results": [{"toolCallId": "tc_1", "result": "x"}]}, [f"{T}.missing-result"]),
    (T, {"results": []}, [f"{T}.missing-result", f"{T}.missing-result"]),
    (
        T,
        {
            "results": [
                {"toolCallId": "tc_1", "result": "x"},
                {"toolCallId": "tc_2", "result": "y"},
                {"toolCallId": "tc_1", "result": "z"},
            ]
        },
        [f"{T}.duplicate-result"],
    ),
    (
        T,
        {
            "results": [
                {"toolCallId": "tc_1", "result": "x"},
                {"toolCallId": "tc_2", "result": "y"},
                {"toolCallId": "tc_9", "result": "z"},
            ]
        },
        [f"{T}.unknown-tool-call-id"],
    ),
    (
        T,
        {"results": [{"toolCallId": "tc_1", "result": {"temp": 21}}, {"toolCallId": "tc_2", "result": "y"}]},
        [f"{T}.result-not-string"],
    ),
    (
        T,
        {"results": [{"toolCallId": "tc_1", "error": {"code": 1}}, {"toolCallId": "tc_2", "result": "y"}]},
        [f"{T}.error-not-string"],
    ),
    (
        T,
        {"results": [{"toolCallId": "tc_1", "result": "a\nb"}, {"toolCallId": "tc_2", "error": "c\r\nd"}]},
        [f"{T}.line-break", f"{T}.line-break"],
    ),
    (T, {"results": [{"toolCallId": "tc_1"}, {"toolCallId": "tc_2", "result": "y"}]}, [f"{T}.no-result-or-error"]),
    (
        T,
        {"results": [{"result": "x"}, {"toolCallId": "tc_2", "result": "y"}]},
        [f"{T}.missing-result", f"{T}.missing-tool-call-id"],
    ),
    (T, {"results": ["x", {"toolCallId": "tc_2", "result": "y"}]}, [f"{T}.missing-result", f"{T}.result-not-object"]),
    (T, {"results": [{"toolCallId": "tc_2", "result": "y"}, {"toolCallId": "tc_1", "result": "x"}]}, [f"{T}.order"]),
    (T, {"error": 42}, [f"{T}.error-not-string"]),
    (T, {"messageResponse": {"results": {}}}, [f"{T}.results-not-array"]),
    ("function-call", {"results": []}, ["function-call.missing-result"]),
    ("function-call", {"result": 3}, ["function-call.result-not-string"]),
    ("assistant-request", {}, ["assistant-request.no-assistant"]),
    ("assistant-request", {"assistantOverrides": {}}, ["assistant-request.no-assistant"]),
    ("assistant-request", {"assistantId": "a", "squadId": "s"}, ["assistant-request.ambiguous"]),
    ("assistant-request", {"assistantId": ""}, ["assistant-request.invalid-id"]),
    ("assistant-request", {"assistantId": 5}, ["assistant-request.invalid-id"]),
    ("assistant-request", {"assistant": "asst_1"}, ["assistant-request.invalid-shape"]),
    ("assistant-request", {"error": ""}, ["assistant-request.error-not-string"]),
    ("assistant-request", {"error": {"x": 1}}, ["assistant-request.error-not-string"]),
    ("assistant-request", {"destination": "+1555"}, ["assistant-request.destination-invalid"]),
    (
        "assistant-request",
        {"destination": {"type": "number", "number": "+1"}, "assistantId": "a"},
        ["assistant-request.destination-with-assistant"],
    ),
    ("transfer-destination-request", {}, ["transfer-destination-request.missing-destination"]),
    ("transfer-destination-request", {"destination": "+1555"}, ["transfer-destination-request.destination-invalid"]),
    (
        "transfer-destination-request",
        {"destination": {"number": "+1555"}},
        ["transfer-destination-request.destination-no-type"],
    ),
    ("transfer-destination-request", {"error": ["x"]}, ["transfer-destination-request.error-not-string"]),
    ("handoff-destination-request", {"result": "ok"}, ["handoff-destination-request.missing-destination"]),
    ("handoff-destination-request", {"destination": []}, ["handoff-destination-request.destination-invalid"]),
    ("knowledge-base-request", {}, ["knowledge-base-request.missing-documents"]),
    ("knowledge-base-request", {"documents": {"content": "x"}}, ["knowledge-base-request.documents-not-array"]),
    (
        "knowledge-base-request",
        {"documents": [{"similarity": 0.5}]},
        ["knowledge-base-request.document-missing-content"],
    ),
    (
        "knowledge-base-request",
        {"documents": [{"content": "x", "similarity": "0.5"}]},
        ["knowledge-base-request.document-bad-similarity"],
    ),
    ("knowledge-base-request", {"documents": [{"content": "x"}]}, ["knowledge-base-request.document-bad-similarity"]),
    ("knowledge-base-request", {"documents": ["x"]}, ["knowledge-base-request.document-not-object"]),
    ("knowledge-base-request", {"message": "speak this"}, ["knowledge-base-request.message-invalid"]),
    ("call.endpointing.request", {}, ["call.endpointing.request.missing-timeout"]),
    ("call.endpointing.request", {"timeoutSeconds": "0.5"}, ["call.endpointing.request.timeout-not-number"]),
    ("call.endpointing.request", {"timeoutSeconds": True}, ["call.endpointing.request.timeout-not-number"]),
    ("call.endpointing.request", {"timeoutSeconds": -1}, ["call.endpointing.request.timeout-negative"]),
    ("campaign.predial", {}, ["campaign.predial.missing-eligible"]),
    ("campaign.predial", {"eligible": "true"}, ["campaign.predial.eligible-not-boolean"]),
    ("campaign.predial", {"eligible": 1}, ["campaign.predial.eligible-not-boolean"]),
]


@pytest.mark.parametrize(("mtype", "reply", "expected"), BAD)
def test_bad_replies_give_the_right_codes(mtype: str, reply: Any, expected: list[str]) -> None:
    problems = check_reply(make(mtype, reply))
    assert sorted(p.code for p in problems) == sorted(expected)
    assert all(p.message and "\n" not in p.message for p in problems)


def test_non_string_result_is_only_a_warning() -> None:
    reply = {"results": [{"toolCallId": "tc_1", "result": 21}, {"toolCallId": "tc_2", "result": "y"}]}
    [p] = check_reply(make("tool-calls", reply))
    assert p.level == "warning"
    [p] = check_reply(
        make(
            "tool-calls", {"results": [{"toolCallId": "tc_1", "result": "a\nb"}, {"toolCallId": "tc_2", "result": "y"}]}
        )
    )
    assert p.level == "error"


REPLY_TYPES = list(PAYLOADS)
JSON_TYPES = [t for t in REPLY_TYPES if t != "voice-request"]


@pytest.mark.parametrize("mtype", REPLY_TYPES)
def test_non_2xx_on_reply_needed_is_an_error(mtype: str) -> None:
    problems = check_reply(make(mtype, {"error": "boom"}, status=500))
    assert [(p.level, p.code) for p in problems] == [("error", f"{mtype}.http-status")]
    assert "500" in problems[0].message


def test_tool_calls_need_exactly_200() -> None:
    good = {"results": [{"toolCallId": "tc_1", "result": "a"}, {"toolCallId": "tc_2", "result": "b"}]}
    assert codes(make("tool-calls", good, status=201)) == ["tool-calls.http-status"]
    assert codes(make("assistant-request", {"assistantId": "a"}, status=201)) == []


@pytest.mark.parametrize("mtype", JSON_TYPES)
@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"", "empty-reply"), (b"ok", "not-json"), (b"[1, 2]", "not-object"), (b'"x"', "not-object")],
)
def test_unparseable_replies(mtype: str, raw: bytes, code: str) -> None:
    assert codes(make(mtype, raw=raw)) == [f"{mtype}.{code}"]


@pytest.mark.parametrize("mtype", JSON_TYPES)
def test_json_with_wrong_content_type_is_a_warning(mtype: str) -> None:
    _, body = fallback_reply(make(mtype), "x")
    problems = check_reply(make(mtype, raw=body, headers=[("Content-Type", "text/plain")]))
    assert [(p.level, p.code) for p in problems] == [("warning", f"{mtype}.content-type")]


def test_truncated_reply_is_not_judged() -> None:
    ex = make("tool-calls", raw=b'{"results": [')
    ex.response_truncated = True
    assert check_reply(ex) == []


@pytest.mark.parametrize("mtype", ["end-of-call-report", "status-update", "speech-update", "x-new-type"])
def test_informational_types(mtype: str) -> None:
    assert check_reply(make(mtype, {})) == []
    assert check_reply(make(mtype, raw=b"whatever, not json", headers=[])) == []
    [p] = check_reply(make(mtype, raw=b"bad", status=400))
    assert (p.level, p.code) == ("warning", f"{mtype}.rejected")
    assert "Your server rejected" in p.message


def test_no_problems_without_a_reply_or_for_plain_http() -> None:
    ex = make("tool-calls", status=None)
    ex.error = "the app is not listening on http://127.0.0.1:3000"
    assert check_reply(ex) == []
    ex = make("tool-calls", status=None)  # still waiting
    assert check_reply(ex) == []
    plain = make("tool-calls", raw=b"nope", status=500)
    plain.message_type = None
    assert check_reply(plain) == []


def test_failed_forward_with_a_synthesised_status_is_not_judged() -> None:
    ex = make("assistant-request", raw=b"Bad Gateway", status=502)
    ex.error = "the app did not answer"
    assert check_reply(ex) == []


@pytest.mark.parametrize(
    ("mtype", "took", "expected"),
    [
        ("assistant-request", 5.6, ("warning", "deadline.near")),
        ("assistant-request", 5.0, None),
        ("assistant-request", 8.0, ("error", "deadline.missed")),
        ("tool-calls", 15.0, ("warning", "deadline.near")),
        ("tool-calls", 13.0, None),
        ("status-update", 19.0, None),  # Vapi does not wait for informational types
    ],
)
def test_deadline(mtype: str, took: float, expected: tuple[str, str] | None) -> None:
    status, body = fallback_reply(make(mtype), "x")  # a valid reply, so only timing matters
    problems = check_reply(make(mtype, raw=body, status=status, took_s=took))
    assert [(p.level, p.code) for p in problems] == ([expected] if expected else [])


def test_deadline_message_has_the_figures() -> None:
    [p] = check_reply(make("assistant-request", {"assistantId": "a"}, took_s=5.6))
    assert p.message == "replied in 5.6 s, 75 % of the 7.5 s assistant-request deadline"
    ex = make("tool-calls", raw=fallback_reply(make("tool-calls"), "x")[1], took_s=15.0)
    ex.deadline_s = 20.0
    [p] = check_reply(ex)
    assert p.message == "replied in 15.0 s, 75 % of the 20 s tool-calls deadline"


ALL_TYPES = [*REPLY_TYPES, "end-of-call-report", "status-update", "x-unknown-type"]


@pytest.mark.parametrize("mtype", ALL_TYPES)
def test_fallback_replies_pass_the_checks(mtype: str) -> None:
    ex = make(mtype, status=None)
    status, body = fallback_reply(ex, "the app at http://127.0.0.1:3000 is\nunreachable")
    assert status == 200
    ex.status, ex.response_body = status, body
    assert check_reply(ex) == []  # judged exactly like an app reply
    ex.fallback, ex.error = True, "the app is unreachable"
    assert check_reply(ex) == []
    if mtype != "voice-request":
        assert isinstance(json.loads(body), dict)
    assert b"\n" not in body


def test_fallback_tool_calls_answers_every_id_in_every_shape() -> None:
    for shape in ("toolCallList", "string-args", "toolWithToolCallList", "toolCalls"):
        ex = make("tool-calls", payload=tool_payload(shape, ids=("a", "b", "c")))
        _, body = fallback_reply(ex, "timed out after 20 s")
        results = json.loads(body)["results"]
        assert [r["toolCallId"] for r in results] == ["a", "b", "c"]
        assert all(r["name"] == "get_weather" for r in results)
        assert all(r["error"] == "vapi-dev fallback: timed out after 20 s" for r in results)


def test_fallback_shapes() -> None:
    def body(mtype: str) -> Any:
        return json.loads(fallback_reply(make(mtype), "down")[1])

    assert body("assistant-request") == {"error": "vapi-dev fallback: down"}
    assert body("function-call") == {"result": "vapi-dev fallback: down"}
    assert body("transfer-destination-request") == {"error": "vapi-dev fallback: down"}
    assert body("handoff-destination-request") == {"error": "vapi-dev fallback: down"}
    assert body("knowledge-base-request") == {"documents": []}
    assert body("campaign.predial") == {"eligible": False}
    assert isinstance(body("call.endpointing.request")["timeoutSeconds"], float)
    assert body("status-update") == {}
    no_ids = make("tool-calls", payload={"message": {"type": "tool-calls"}})
    assert json.loads(fallback_reply(no_ids, "down")[1]) == {"error": "vapi-dev fallback: down"}


# -- large and deep replies: one linear pass, bounded verdicts, no exceptions ----------------------------


def big_tool_call(n: int) -> dict[str, Any]:
    calls = [{"id": f"tc_{i}", "type": "function", "function": {"name": "f", "arguments": {"i": i}}} for i in range(n)]
    return {"message": {"type": "tool-calls", "call": {"id": "call_1"}, "toolCallList": calls}}


def test_twenty_thousand_results_are_checked_in_one_pass() -> None:
    good = {"results": [{"toolCallId": f"tc_{i}", "result": "ok"} for i in range(20_000)]}
    assert check_reply(make("tool-calls", good, payload=big_tool_call(20_000))) == []
    swapped = {"results": [*good["results"][1:], good["results"][0]]}
    assert codes(make("tool-calls", swapped, payload=big_tool_call(20_000))) == ["tool-calls.order"]
    half = {"results": good["results"][::2]}
    problems = check_reply(make("tool-calls", half, payload=big_tool_call(20_000)))
    assert [p.message for p in problems[:2]] == [
        "tool call tc_1 got no result; Vapi reports 'no result returned'",
        "tool call tc_3 got no result; Vapi reports 'no result returned'",
    ]


def test_many_problems_of_one_kind_are_counted_not_listed() -> None:
    reply = {"results": [{"toolCallId": f"other_{i}", "result": "a\nb"} for i in range(20_000)]}
    problems = check_reply(make("tool-calls", reply, payload=big_tool_call(3)))
    by_code: dict[str, list[str]] = {}
    for p in problems:
        by_code.setdefault(p.code, []).append(p.message)
    assert set(by_code) == {"tool-calls.unknown-tool-call-id", "tool-calls.line-break", "tool-calls.missing-result"}
    unknown = by_code["tool-calls.unknown-tool-call-id"]
    assert len(unknown) == 6 and unknown[-1] == "… and 19995 more like this"  # 5 shown, then the count
    assert by_code["tool-calls.line-break"][-1] == "… and 19995 more like this"
    assert len(by_code["tool-calls.missing-result"]) == 3  # under the bound: each one
    assert len(problems) == 15


def test_unknown_long_id_message_is_bounded() -> None:
    reply = {"results": [{"toolCallId": "tc_1", "result": "a"}, {"toolCallId": "y" * 100_000, "result": "b"}]}
    problems = check_reply(make("tool-calls", reply))
    assert [p.code for p in problems] == ["tool-calls.unknown-tool-call-id", "tool-calls.missing-result"]
    assert all(len(p.message) < 300 for p in problems)


DEEP = b"[" * 100_000 + b"]" * 100_000  # valid JSON, deeper than any recursive parser goes


def test_a_reply_nested_too_deeply_is_a_warning_not_a_crash() -> None:
    [p] = check_reply(make("tool-calls", raw=b'{"results": ' + DEEP + b"}"))
    assert (p.level, p.code) == ("warning", "tool-calls.too-deep")
    [p] = check_reply(make("assistant-request", raw=DEEP))
    assert p.code == "assistant-request.too-deep"
    assert codes(make("tool-calls", raw=b'{"results": [' + b"[" * 10)) == ["tool-calls.not-json"]


def test_deeply_nested_string_arguments_do_not_break_checks_or_fallback() -> None:
    deep_args = (b"[" * 5_000 + b"]" * 5_000).decode()  # a string: messages.tool_calls parses it as JSON
    payload = {
        "message": {"type": "tool-calls", "toolCallList": [{"id": "tc_1", "function": {"arguments": deep_args}}]}
    }
    ok = make("tool-calls", {"results": [{"toolCallId": "tc_1", "result": "done"}]}, payload=payload)
    assert check_reply(ok) == []
    _, body = fallback_reply(make("tool-calls", payload=payload), "down")
    assert json.loads(body) == {"error": "vapi-dev fallback: down"}  # ids unreadable: the general answer


# -- redirects (#12): Vapi does not follow them, so a 3xx says where it points and what to change ----------

FORWARD = "http://localhost:5000/api/webhook"


def redirected(
    mtype: str = "tool-calls",
    location: str = "/api/webhook/",
    *,
    status: int = 308,
    path: str = "/",
    forward_url: str = FORWARD,
) -> Exchange:
    """``mtype`` sent to ``path``, forwarded to ``forward_url`` and answered ``status`` → ``location``."""
    return make_exchange(
        mtype,
        status=status,
        raw=b"Redirecting...",
        path=path,
        payload=PAYLOADS.get(mtype, {"message": {"type": mtype}}),
        response_headers=[("Content-Type", "text/html"), ("Location", location)],
        forward_url=forward_url,
    )


@pytest.mark.parametrize("mtype", REPLY_TYPES)
def test_a_redirect_to_a_reply_needed_type_is_one_error_saying_where(mtype: str) -> None:
    [p] = check_reply(redirected(mtype))
    assert (p.level, p.code) == ("error", f"{mtype}.redirect")
    assert p.message == (
        f"Vapi does not follow redirects: your app answered 308 to /api/webhook/ instead of replying to {mtype}; "
        "point vapi-dev's target at http://localhost:5000/api/webhook/ directly"
    )


@pytest.mark.parametrize("mtype", ["status-update", "end-of-call-report", "x-new-type"])
def test_a_redirect_of_an_informational_type_is_a_warning(mtype: str) -> None:
    [p] = check_reply(redirected(mtype, status=301))
    assert (p.level, p.code) == ("warning", f"{mtype}.redirect")
    assert p.message.startswith(
        f"Vapi does not follow redirects: your app answered 301 to /api/webhook/, which Vapi logs as "
        f"'Your server rejected {mtype} webhook'; "
    )


@pytest.mark.parametrize(
    ("location", "path", "forward_url", "fix"),
    [
        # Vapi's "/" reached the target itself: the target is what to change
        ("/api/webhook/", "/", FORWARD, "point vapi-dev's target at http://localhost:5000/api/webhook/ directly"),
        (
            "http://localhost:5000/api/webhook/",
            "",
            FORWARD,
            "point vapi-dev's target at http://localhost:5000/api/webhook/",
        ),
        # the server URL's path reached a route under the target: the server URL is what to change
        (
            "/webhook/",
            "/webhook",
            "http://localhost:5000/webhook",
            "point the server URL at <public URL>/webhook/ directly",
        ),
        (
            "/api/tools/",
            "/tools",
            "http://localhost:5000/api/tools",
            "point the server URL at <public URL>/tools/ directly",
        ),
        (
            "tools/?v=2",
            "/tools",
            "http://localhost:5000/api/tools",
            "point the server URL at <public URL>/tools/?v=2 directly",
        ),
        # elsewhere: either
        (
            "/login",
            "/tools",
            "http://localhost:5000/api/tools",
            "point the server URL (or vapi-dev's target) at http://localhost:5000/login directly",
        ),
        (
            "https://app.example.com/hook",
            "/",
            FORWARD,
            "point the server URL (or vapi-dev's target) at https://app.example.com/hook directly",
        ),
    ],
)
def test_a_redirect_says_what_to_point_where(location: str, path: str, forward_url: str, fix: str) -> None:
    [p] = check_reply(redirected(location=location, path=path, forward_url=forward_url))
    assert fix in p.message, p.message
    assert "\n" not in p.message


def test_redirect_resolution() -> None:
    def shown(location: str, forward_url: str = FORWARD) -> tuple[str, str, bool] | None:
        moved = redirect_of(redirected(location=location, forward_url=forward_url))
        return None if moved is None else (moved.shown, moved.url, moved.same_origin)

    assert shown("/api/webhook/") == ("/api/webhook/", "http://localhost:5000/api/webhook/", True)
    assert shown("webhook/") == ("/api/webhook/", "http://localhost:5000/api/webhook/", True)
    assert shown("HTTP://LOCALHOST:5000/x?y=1#z") == ("/x?y=1#z", "http://LOCALHOST:5000/x?y=1#z", True)
    assert shown("http://example.com:80/a", "http://example.com/b") == ("/a", "http://example.com:80/a", True)
    assert shown("https://localhost:5000/x") == ("https://localhost:5000/x", "https://localhost:5000/x", False)
    assert shown("http://localhost:5001/x") == ("http://localhost:5001/x", "http://localhost:5001/x", False)
    assert shown("http://[::1") == ("http://[::1", "http://[::1", False)  # unparseable: shown as it came
    assert shown("/x", "") == ("/x", "/x", False)  # no forward URL (an old journal row)
    assert redirect_of(redirected(status=200)) is None
    assert redirect_of(redirected(location="")) is None


def test_a_3xx_without_a_location_is_a_plain_status_problem() -> None:
    ex = make("tool-calls", raw=b"", status=304, headers=[])
    assert codes(ex) == ["tool-calls.http-status"]
    assert redirect_of(ex) is None


def test_redirect_messages_and_cells_are_bounded_and_masked() -> None:
    long = "/" + "x" * 100_000
    [p] = check_reply(redirected(location=long))
    assert len(p.message) < 500
    shown = redirect_shown(redirected(location=long))
    assert shown is not None and len(shown) <= LOCATION_SHOWN
    secret = redirect_shown(redirected(location="/cb?token=sk-live-123456"))
    assert secret is not None and "sk-live-123456" not in secret and secret.startswith("/cb?token=")
    assert redirect_shown(redirected(status=200)) is None


def test_redirect_in_the_status_cell_is_escaped() -> None:
    from vapi_dev.output.lines import exchange_line

    line = exchange_line(redirected(location="/api/webhook/\x1b[2J")).plain
    assert "308 → /api/webhook/\\x1b[2J" in line and "\x1b" not in line
    assert "308 → /api/webhook/ " in exchange_line(redirected()).plain


# -- reply wording (#12) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mtype", JSON_TYPES)
def test_a_json_null_reply_is_not_called_invalid_json(mtype: str) -> None:
    for raw in (b"null", b" null\n"):
        [p] = check_reply(make(mtype, raw=raw))
        assert (p.level, p.code) == ("error", f"{mtype}.not-object")
        assert p.message.startswith("the reply is a JSON null, expected an object")
    [p] = check_reply(make(mtype, raw=b"[1, 2]"))
    assert p.message.startswith("the reply is a JSON array, expected an object")
    [p] = check_reply(make(mtype, raw=b"ok"))
    assert p.message.startswith("the reply is not valid JSON")


def test_voice_request_replies_are_raw_audio_not_json() -> None:
    [p] = check_reply(make("voice-request", {"audio": "base64…"}))
    assert (p.level, p.code) == ("error", "voice-request.json-reply")
    assert "raw PCM audio" in p.message
    unlabelled = make("voice-request", raw=b'{"error": "no voice"}', headers=[("Content-Type", "audio/pcm")])
    assert codes(unlabelled) == ["voice-request.json-reply"]
    labelled = make("voice-request", raw=b"\x00\x01\x02", headers=[("Content-Type", "application/json")])
    assert codes(labelled) == ["voice-request.json-reply"]
    audio = make("voice-request", raw=b"\x00\x01" * 100, headers=[("Content-Type", "audio/pcm")])
    assert check_reply(audio) == []
    silent = make("voice-request", raw=b"", headers=JSON_CT)  # vapi-dev's own fallback: empty, JSON-labelled
    assert check_reply(silent) == []


def test_assistant_request_500_with_error_is_a_failure_not_a_decline() -> None:
    [p] = check_reply(make("assistant-request", {"error": "db down"}, status=500))
    assert (p.level, p.code) == ("error", "assistant-request.http-status")
    assert p.message.startswith("the app failed (500), so Vapi counts a failed request")
    assert "not a declined call" in p.message and "answer 200" in p.message
    assert summarize(make("assistant-request", {"error": "db down"}, status=500)) == "app failed (500): db down"
    assert summarize(make("assistant-request", raw=b"Internal Server Error", status=503)) == "app failed (503)"
    assert summarize(make("assistant-request", {"error": "Sorry, we are closed."})) == "→ error Sorry, we are closed."


def test_tool_summaries_show_errors_not_null() -> None:
    def said(reply: Any, mtype: str = "tool-calls", status: int = 200) -> str:
        return summarize(make(mtype, reply, status=status, payload=tool_payload(ids=("tc_1",))))

    assert said({"results": [{"toolCallId": "tc_1", "error": "Weather service down"}]}) == (
        "get_weather(city=Paris) → error Weather service down"
    )
    assert said({"results": [{"toolCallId": "tc_1", "result": None, "error": "boom"}]}).endswith("→ error boom")
    assert said({"results": [{"toolCallId": "tc_1", "error": None, "result": "Sunny"}]}).endswith("→ Sunny")
    assert said({"results": [{"toolCallId": "tc_1", "result": None}]}).endswith("→ null")  # a real null result
    assert said({"error": "tools are down"}).endswith("→ error tools are down")
    assert said({"results": [{"toolCallId": "tc_1", "result": "Sunny"}]}, status=500) == (
        "get_weather(city=Paris) → app failed (500)"
    )
    legacy = make("function-call", {"error": "lookup failed"})
    assert summarize(legacy).endswith("→ error lookup failed")
    assert "null" not in summarize(legacy)
