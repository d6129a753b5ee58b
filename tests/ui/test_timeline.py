"""The calls view's rows and a call's timeline, computed from Exchanges (vapi_dev/ui/timeline.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.exchanges import make_exchange
from tests.ui.calls_support import T0, WEATHER, at, call_exchanges, one, tool_reply
from vapi_dev.exchange import AuthResult, Exchange, Problem
from vapi_dev.redact import MASK, Masker
from vapi_dev.ui.timeline import DETAIL_LIMIT, TEXT_LIMIT, CallRow, Entry, call_rows, exchanges_of, timeline
from vapi_dev.vapi.samples import TOOL_CALL_ID, sample
from vapi_dev.vapi.summary import TOO_DEEP

MASK_OFF = Masker()
HOSTILE = "\x1b[31mred\x1b[0m [bold]big[/bold] \x07"


def kinds(entries: list[Entry]) -> list[str]:
    return [e.kind for e in entries]


def tool(args: dict[str, Any], reply: Any, call_id: str = "c1", **fields: Any) -> Exchange:
    """A tool-calls exchange of call ``call_id`` with one tool call per (id → arguments) in ``args``."""
    listed = [
        {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": a}} for i, a in args.items()
    ]
    payload = sample("tool-calls", call_id, toolCallList=listed, toolWithToolCallList=[], toolCalls=[])
    return at(make_exchange("tool-calls", reply, payload=payload, **fields), T0 + 5)


def transcript(role: str, text: str, kind: str = "final", call_id: str = "c1", when: float = T0) -> Exchange:
    return one("transcript", call_id, when, role=role, transcript=text, transcriptType=kind)


# -- a whole call, as `vapi-dev trigger call` sends it ------------------------------------------------------


def test_trigger_call_timeline() -> None:
    exchanges = call_exchanges("call-1")
    entries = timeline(exchanges, MASK_OFF)
    assert kinds(entries) == ["status", "status", "event", "user", "event", "tool", "status", "summary"]
    assert [e.exchange_id for e in entries] == [ex.id for ex in exchanges]  # each entry leads to its exchange
    assert [e.at for e in entries] == [ex.received_at for ex in exchanges]
    status = [e.text for e in entries if e.kind == "status"]
    assert status == ["ringing", "in-progress", "ended"]
    assert entries[2].text == "speech-update user started"
    assert entries[3].text == "What's the weather in Paris?"
    assert entries[4].text == "conversation-update 3 messages"  # transcripts are on: the history adds no lines
    tool_entry = entries[5]
    assert tool_entry.text == f"get_weather(city=Paris) → {WEATHER}"
    assert tool_entry.detail == f'arguments {{"city":"Paris"}} → result {WEATHER}'
    assert tool_entry.latency_ms == pytest.approx(42, abs=1)
    assert not tool_entry.problem
    report = entries[7]
    assert report.text.startswith("customer-ended-call · 99 s · $0.12 · https://storage.vapi.ai/call-1-mono.wav")
    assert report.detail == "Caller asked about the weather. · success: true"
    assert not any(e.problem for e in entries)
    assert all(e.latency_ms is None for e in entries if e.kind != "tool")  # only replies Vapi waits for


def test_call_rows_of_trigger_calls() -> None:
    first, second = call_exchanges("call-1"), call_exchanges("call-2", T0 + 100, ended=False)
    plain = at(make_exchange(None, None, body=b"hello", path="/health"), T0 + 50)  # no call id: not a call
    rows = call_rows([*second, plain, *first])  # call-1 started first, though its exchanges come later
    assert rows == [
        CallRow("call-1", T0, 99.0, 8, 0, "customer-ended-call", 0.12),
        CallRow("call-2", T0 + 100, 5.0, 6, 0, None, None),  # in progress: first to last exchange so far
    ]


def test_call_rows_duration_reason_and_cost() -> None:
    start, end = "2026-01-02T12:00:00.000Z", "2026-01-02T12:02:05.500Z"
    report = one("end-of-call-report", "c1", T0 + 9, durationSeconds=None, startedAt=start, endedAt=end, cost=1.5)
    status = one("status-update", "c2", T0 + 9, status="ended", endedReason="silence-timed-out")
    odd = one("end-of-call-report", "c3", T0 + 9, durationSeconds="long", cost=True, endedReason=7)
    rows = call_rows([one("status-update", "c1", T0), report, one("status-update", "c2", T0 + 1), status, odd])
    assert rows[0] == CallRow("c1", T0, 125.5, 2, 0, "customer-ended-call", 1.5)  # startedAt → endedAt
    assert rows[1] == CallRow("c2", T0 + 1, 8.0, 2, 0, "silence-timed-out", None)  # status-update's reason
    # values of the wrong type are not shown as what they are not: startedAt → endedAt, the call's endedReason
    assert rows[2] == CallRow("c3", T0 + 9, 99.0, 1, 0, "customer-ended-call", None)


def test_report_reason_wins_over_the_status_update() -> None:
    status = one("status-update", "c1", T0, status="ended", endedReason="assistant-ended-call")
    report = one("end-of-call-report", "c1", T0 + 1, endedReason="customer-ended-call")
    later = one("status-update", "c1", T0 + 2, status="ended", endedReason="something-else")
    assert call_rows([status, report, later])[0].ended_reason == "customer-ended-call"


def test_problems_errors_and_failed_auth_are_counted_and_marked() -> None:
    ok = one("speech-update", "c1", T0)
    slow = one("status-update", "c1", T0 + 1)
    slow.problems = [Problem("warning", "slow", "took 19 s of 20 s")]
    failed = at(make_exchange("tool-calls", None, status=502, error="app unreachable: connection refused"), T0 + 2)
    failed.call_id = "c1"
    denied = one("speech-update", "c1", T0 + 3)
    denied.auth = AuthResult("secret", False, "X-Vapi-Secret did not match")
    passed = one("speech-update", "c1", T0 + 4)
    passed.auth = AuthResult("secret", True)
    exchanges = [ok, slow, failed, denied, passed]
    assert call_rows(exchanges)[0].problems == 3
    entries = timeline(exchanges, MASK_OFF)
    assert [e.problem for e in entries] == [False, True, True, True, False]
    assert entries[1].detail == "⚠ took 19 s of 20 s"
    assert "✗ app unreachable: connection refused" in entries[2].detail
    assert entries[3].detail == "✗ authentication failed: X-Vapi-Secret did not match"


def test_unknown_and_plain_exchanges_are_shown_generically() -> None:
    unknown = at(make_exchange(None, None, payload={"message": {"type": "brand-new-thing", "call": {"id": "c1"}}}), T0)
    unknown.message_type, unknown.call_id = "brand-new-thing", "c1"
    plain = at(make_exchange(None, None, body=b"x", path="/health", query="token=abc12345"), T0 + 1)
    plain.call_id = "c1"
    entries = timeline([unknown, plain], MASK_OFF)
    assert [(e.kind, e.text) for e in entries] == [
        ("event", "brand-new-thing"),
        ("event", f"POST /health?token={MASK}"),
    ]


def test_other_events_are_one_compact_line() -> None:
    entries = timeline(
        [one("hang", "c1", T0), one("user-interrupted", "c1", T0 + 1), one("language-change-detected", "c1", T0 + 2)],
        MASK_OFF,
    )
    assert [(e.kind, e.text, e.problem) for e in entries] == [
        ("event", "hang assistant stalled — slow model, voice or tool server?", False),  # shown red, not counted
        ("event", "user-interrupted barge-in", False),
        ("event", "language-change-detected es", False),
    ]


def test_a_stream_of_chatty_messages_is_one_counted_line() -> None:
    tokens = [
        one("model-output", "c1", T0 + i / 10, output={"content": word}) for i, word in enumerate("It is sunny".split())
    ]
    speech = [
        one("speech-update", "c1", T0 + 1, status="started"),
        one("speech-update", "c1", T0 + 2, status="stopped"),
    ]
    more = [one("model-output", "c1", T0 + 3, output="Bye"), one("model-output", "c1", T0 + 4, output="now")]
    bad = one("model-output", "c1", T0 + 5, output="!")
    bad.problems = [Problem("warning", "odd", "odd token")]
    entries = timeline([*tokens, *speech, *more, bad], MASK_OFF)
    assert [(e.text, e.exchange_id) for e in entries] == [
        ('model-output ×3 · {"content":"sunny"}', tokens[0].id),  # where the run began, and its latest
        ("speech-update user started", speech[0].id),  # who started or stopped speaking: each on its own
        ("speech-update user stopped", speech[1].id),
        ("model-output ×2 · now", more[0].id),
        ("model-output !", bad.id),  # a problem is never hidden in a count
    ]
    assert entries[-1].problem


# -- transcripts ----------------------------------------------------------------------------------------


def test_partials_give_way_to_the_final() -> None:
    exchanges = [
        transcript("user", "What's", "partial"),
        transcript("user", "What's the wea", "partial"),
        transcript("assistant", "Let me", "partial"),
        transcript("user", "What's the weather?"),
        transcript("assistant", "Let me check."),
    ]
    entries = timeline(exchanges, MASK_OFF)
    assert [(e.kind, e.text) for e in entries] == [("user", "What's the weather?"), ("assistant", "Let me check.")]
    assert [e.exchange_id for e in entries] == [exchanges[3].id, exchanges[4].id]


def test_the_last_partial_stays_when_no_final_closes_it() -> None:
    exchanges = [
        transcript("user", "Hello"),
        transcript("assistant", "Hi th", "partial"),
        transcript("assistant", "Hi there, how can", "partial"),
        one("end-of-call-report", "c1", T0 + 3),
    ]
    entries = timeline(exchanges, MASK_OFF)
    assert [(e.kind, e.text) for e in entries[:2]] == [("user", "Hello"), ("assistant", "Hi there, how can (partial)")]
    assert entries[1].exchange_id == exchanges[2].id
    assert kinds(entries) == ["user", "assistant", "summary"]


def test_final_type_spelling_and_other_roles() -> None:
    final = one("transcript", "c1", T0, type='transcript[transcriptType="final"]', transcriptType=None, role="bot")
    odd = transcript("narrator", "Once upon a time")
    entries = timeline([final, odd], MASK_OFF)
    assert [(e.kind, e.text) for e in entries] == [
        ("assistant", "What's the weather in Paris?"),
        ("event", "transcript narrator: Once upon a time"),
    ]


def history(*said: tuple[str, str]) -> list[dict[str, Any]]:
    return [
        {"role": role, "message": text, "time": 1000 + i, "secondsFromStart": i} for i, (role, text) in enumerate(said)
    ]


def test_without_transcripts_the_history_gives_each_line_once() -> None:
    greet, ask, answer = ("bot", "Hi, how can I help?"), ("user", "Weather in Paris?"), ("assistant", "Sunny.")
    first = one("conversation-update", "c1", T0, messages=history(("system", "You are a bot."), greet, ask))
    again = one("conversation-update", "c1", T0 + 1, messages=history(("system", "You are a bot."), greet, ask))
    tool_call = {"role": "tool_calls", "message": "", "toolCalls": [], "time": 5000}
    grown = one(
        "conversation-update", "c1", T0 + 2, messages=[*history(("system", "You are a bot."), greet, ask), tool_call]
    )
    last = one(
        "conversation-update", "c1", T0 + 3, messages=[*history(("system", "You are a bot."), greet, ask, answer)]
    )
    entries = timeline([first, again, grown, last], MASK_OFF)
    assert [(e.kind, e.text, e.exchange_id) for e in entries] == [
        ("assistant", "Hi, how can I help?", first.id),
        ("user", "Weather in Paris?", first.id),
        # nothing new, then only a tool call (shown from tool-calls): one compact line counting both
        ("event", "conversation-update ×2 · 4 messages", again.id),
        ("assistant", "Sunny.", last.id),
    ]


# -- tool calls ------------------------------------------------------------------------------------------


def test_tool_results_are_matched_by_id() -> None:
    reply = {
        "results": [
            {"toolCallId": "b", "result": "Rainy"},
            {"toolCallId": "zzz", "result": "for nobody"},
            {"toolCallId": "a", "result": {"temp": 21, "sky": "clear"}},
        ]
    }
    ex = tool({"a": {"city": "Paris"}, "b": {"city": "Oslo"}, "c": {"city": "Rome"}}, reply)
    entries = timeline([ex], MASK_OFF)
    assert [e.text for e in entries] == [
        'get_weather(city=Paris) → {"temp":21,"sky":"clear"}',
        "get_weather(city=Oslo) → Rainy",
        "get_weather(city=Rome) → no result for this call",
    ]
    assert [e.problem for e in entries] == [False, False, True]
    assert entries[0].detail == 'arguments {"city":"Paris"} → result {"temp":21,"sky":"clear"}'
    assert entries[2].detail == 'arguments {"city":"Rome"}'
    assert {e.exchange_id for e in entries} == {ex.id}


def test_tool_errors_failures_and_waiting() -> None:
    errored = tool({"a": {"city": "Paris"}}, {"results": [{"toolCallId": "a", "error": "Weather service down"}]})
    failed = tool({"a": {"city": "Paris"}}, {"error": "boom"}, status=500)
    waiting = tool({"a": {"city": "Paris"}}, None, status=None, took_s=None)
    unreachable = tool({"a": {"city": "Paris"}}, None, status=502, error="app unreachable: connection refused")
    one_error = tool({"a": {"city": "Paris"}, "b": {"city": "Oslo"}}, {"error": "no tools today"})
    entries = timeline([errored, failed, waiting, unreachable, one_error], MASK_OFF)
    assert [(e.text, e.problem) for e in entries] == [
        ("get_weather(city=Paris) → error Weather service down", True),
        ("get_weather(city=Paris) → app failed (500): boom", True),
        ("get_weather(city=Paris) … waiting for the app", False),
        ("get_weather(city=Paris) → no reply from the app", True),
        ("get_weather(city=Paris) → error no tools today", True),  # one {"error"} answers every call
        ("get_weather(city=Oslo) → error no tools today", True),
    ]
    assert entries[0].detail == 'arguments {"city":"Paris"} → error Weather service down'
    assert entries[2].latency_ms is None
    assert entries[3].detail == 'arguments {"city":"Paris"} · ✗ app unreachable: connection refused'


def test_legacy_function_call() -> None:
    ex = at(make_exchange("function-call", {"result": "Sunny"}), T0)
    (entry,) = timeline([ex], MASK_OFF)
    assert (entry.kind, entry.text, entry.problem) == ("tool", "get_weather(city=Paris) → Sunny", False)


def test_sample_reply_matches_the_sample_call() -> None:
    (entry,) = timeline([at(make_exchange("tool-calls", tool_reply("Foggy")), T0)], MASK_OFF)
    assert entry.text == "get_weather(city=Paris) → Foggy"
    assert TOOL_CALL_ID not in entry.text


# -- transfers and status changes --------------------------------------------------------------------------


def test_transfers() -> None:
    number = {"type": "number", "number": "+15555550111"}
    asked = one("transfer-destination-request", "c1", T0, reply={"destination": number})
    empty = one("transfer-destination-request", "c1", T0 + 1, reply={"message": {"type": "request-start"}})
    done = one("transfer-update", "c1", T0 + 2, toAssistant={"name": "Billing bot"})
    sip = one("phone-call-control", "c1", T0 + 3)
    handoff = one(
        "handoff-destination-request",
        "c1",
        T0 + 4,
        reply={"destination": {"type": "assistant", "assistantName": "Billing"}},
    )
    forwarding = one("status-update", "c1", T0 + 5, status="forwarding", destination=number)
    entries = timeline([asked, empty, done, sip, handoff, forwarding], MASK_OFF)
    assert [(e.kind, e.text, e.problem) for e in entries] == [
        ("transfer", "destination requested → +15555550111", False),
        ("transfer", "destination requested → no destination in the reply", True),
        ("transfer", "transferred → +15555550111 (assistant Billing bot)", False),
        ("transfer", "forward → sip:agent@example.invalid", False),
        ("transfer", "handoff requested → Billing", False),
        ("status", "forwarding → +15555550111", False),
    ]
    assert entries[0].latency_ms is not None  # Vapi waits for a destination


# -- what the network sends is masked, bounded, and kept as text -----------------------------------------------


def test_secrets_are_masked_in_transcripts_arguments_results_and_summaries() -> None:
    secret = "s3cr3t-value-9876"
    mask = Masker([secret])
    said = transcript("user", f"my key is {secret} and Bearer abcdefgh12345678")
    args = tool(
        {"a": {"city": "Paris", "apiKey": "sk-live-123456", "note": f"pw {secret}"}},
        {"results": [{"toolCallId": "a", "result": f"ok {secret}"}]},
    )
    report = one("end-of-call-report", "c1", T0 + 9, analysis={"summary": f"The caller read out {secret}."})
    entries = timeline([said, args, report], mask)
    text = json.dumps([[e.text, e.detail] for e in entries])
    assert secret not in text and "abcdefgh12345678" not in text and "sk-live-123456" not in text
    assert entries[0].text == f"my key is {MASK} and Bearer {MASK}"
    assert f"apiKey={MASK}" in entries[1].text
    assert f'"apiKey":"{MASK}"' in entries[1].detail and f"→ result ok {MASK}" in entries[1].detail
    assert entries[2].detail.startswith(f"The caller read out {MASK}.")
    rows = call_rows([said, args, report])
    assert secret not in repr(rows)


def test_hostile_text_is_kept_as_text_for_the_screen_to_escape() -> None:
    said = transcript("user", HOSTILE)
    reason = one("status-update", "c1", T0 + 1, status="ended", endedReason=HOSTILE)
    entries = timeline([said, reason], MASK_OFF)
    # one line (whitespace runs become one space), but escapes and markup are untouched: printable() and
    # rich.text.Text show them literally
    assert entries[0].text == "\x1b[31mred\x1b[0m [bold]big[/bold] \x07"
    assert entries[1].text == f"ended ({HOSTILE.strip()})"
    assert call_rows([said, reason])[0].ended_reason == HOSTILE


def test_long_texts_are_bounded() -> None:
    long = "word " * 5000
    said = transcript("user", long)
    args = tool({"a": {"city": long}}, {"results": [{"toolCallId": "a", "result": long}]})
    report = one("end-of-call-report", "c1", T0 + 9, analysis={"summary": long})
    for entry in timeline([said, args, report], MASK_OFF):
        assert len(entry.text) <= TEXT_LIMIT and len(entry.detail) <= DETAIL_LIMIT
        assert "\n" not in entry.text


def test_a_payload_too_deep_to_walk_costs_only_its_line() -> None:
    deep: Any = "bottom"
    for _ in range(3000):
        deep = {"a": deep}
    ex = tool({"a": deep}, {"results": [{"toolCallId": "a", "result": "ok"}]}, body=b"{}")
    entries = timeline([transcript("user", "Hi"), ex], MASK_OFF)
    assert [(e.kind, e.text) for e in entries] == [("user", "Hi"), ("event", f"tool-calls {TOO_DEEP}")]


# -- many calls ----------------------------------------------------------------------------------------------


def test_ten_thousand_exchanges_over_two_hundred_calls() -> None:
    """call_rows is one pass and timeline one pass per call: 10,000 exchanges cost 10,000 steps, not 10,000²
    (a quadratic version takes minutes here and trips the test's timeout)."""
    exchanges: list[Exchange] = []
    for n in range(200):
        base = call_exchanges(f"call-{n:03d}", T0 + n)
        exchanges += base
        for k in range(42):
            exchanges.append(transcript("user", f"line {k}", call_id=f"call-{n:03d}", when=T0 + n + 0.001 * k))
    assert len(exchanges) == 10_000
    rows = call_rows(exchanges)
    assert len(rows) == 200 and {r.events for r in rows} == {50}
    assert [r.call_id for r in rows] == [f"call-{n:03d}" for n in range(200)]
    calls = {r.call_id: exchanges_of(r.call_id, exchanges) for r in rows[:3]}
    for call_exs in calls.values():
        entries = timeline(call_exs, MASK_OFF)
        assert len(entries) == 50 and kinds(entries).count("user") == 43
    whole = timeline([ex for ex in exchanges if ex.call_id == "call-199"], MASK_OFF)
    assert whole[-1].text == "line 41"


def test_one_call_of_ten_thousand_exchanges() -> None:
    """Partials superseded, chatty runs counted and tool results matched each cost a step, not a rescan."""
    exchanges: list[Exchange] = []
    for n in range(2_000):
        exchanges += [
            transcript("user", f"word {n}", "partial", when=T0 + n),
            transcript("user", f"words {n}", "partial", when=T0 + n),
            transcript("user", f"sentence {n}", when=T0 + n),
            one("model-output", "c1", T0 + n, output=f"token {n}"),
            tool({f"t{n}": {"n": n}}, {"results": [{"toolCallId": f"t{n}", "result": n}]}),
        ]
    entries = timeline(exchanges, MASK_OFF)
    assert len(entries) == 6_000
    assert [e.text for e in entries[-3:]] == ["sentence 1999", "model-output token 1999", "get_weather(n=1999) → 1999"]
    assert call_rows(exchanges) == [CallRow("c1", T0, 1999.0, 10_000, 0, None, None)]
