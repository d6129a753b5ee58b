"""Reply contracts of Vapi's reply-needed messages: checking the app's reply, and fallback replies.

Checks are linear in the size of the request and reply, and their verdicts bounded (SAME_CODE_SHOWN of
each code, then one line counting the rest): a reply of 20,000 results costs one pass, not 20,000².
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from vapi_dev.exchange import Exchange, Problem, header
from vapi_dev.vapi.messages import message_of, tool_calls, type_info
from vapi_dev.vapi.summary import Redirect, redirect_of

DEADLINE_WARN_FRACTION = 0.7
SAME_CODE_SHOWN = 5  # problems of one code listed one by one; the rest are counted in one more
ID_SHOWN = 60  # characters of a toolCallId quoted in a message (an id can be anything the app sent)
URL_SHOWN = 120  # characters of a redirect's Location quoted in a message (the app sent it)
_ASSISTANT_SHAPES = ("assistantId", "assistant", "squadId", "squad", "workflowId", "workflow")


class _Checker:
    """Collects problems for one exchange, prefixing codes with the message type; bounded per code."""

    def __init__(self, mtype: str) -> None:
        self.mtype = mtype
        self.problems: list[Problem] = []
        self._counts: dict[str, int] = {}
        self._more: dict[str, int] = {}  # code → index of its "… more like this" problem

    def error(self, code: str, message: str) -> None:
        self.add(Problem("error", f"{self.mtype}.{code}", message))

    def warn(self, code: str, message: str) -> None:
        self.add(Problem("warning", f"{self.mtype}.{code}", message))

    def add(self, problem: Problem) -> None:
        n = self._counts[problem.code] = self._counts.get(problem.code, 0) + 1
        if n <= SAME_CODE_SHOWN:
            self.problems.append(problem)
        elif n == SAME_CODE_SHOWN + 1:
            self._more[problem.code] = len(self.problems)
            self.problems.append(problem)  # replaced by the count in done()

    def skip(self, code: str) -> bool:
        """True (and counted) when a problem of ``code`` would only be counted: its message need not be made."""
        full = f"{self.mtype}.{code}"
        n = self._counts.get(full, 0)
        if n <= SAME_CODE_SHOWN:
            return False
        self._counts[full] = n + 1
        return True

    def done(self) -> list[Problem]:
        for code, i in self._more.items():
            more = self._counts[code] - SAME_CODE_SHOWN
            self.problems[i] = Problem(self.problems[i].level, code, f"… and {more} more like this")
        return self.problems


def _quoted(tcid: str, limit: int = ID_SHOWN) -> str:
    return tcid if len(tcid) <= limit else tcid[: limit - 1] + "…"


def _requested_ids(payload: Any) -> list[str]:
    """The ids of messages.tool_calls(payload), read without building ToolCalls or parsing arguments:
    a check of 20,000 calls needs only their ids, and a walk that is linear and never recursive."""
    msg = message_of(payload)
    for key in ("toolCallList", "toolWithToolCallList", "toolCalls"):
        items = msg.get(key)
        if isinstance(items, list) and items:
            ids = []
            for item in items:
                while isinstance(item, dict) and isinstance(item.get("toolCall"), dict):
                    item = item["toolCall"]  # a toolWithToolCallList entry
                cid = item.get("id") if isinstance(item, dict) else None
                if isinstance(cid, str) and cid:
                    ids.append(cid)
            return ids
    return []  # a legacy functionCall has no id


def _unparsed(body: bytes) -> str:
    """Why Exchange.response_json() gave None for ``body``: "null" (it is JSON null), "deep" (valid JSON
    nested deeper than the parser goes) or "invalid"."""
    try:
        json.loads(body)
    except RecursionError:
        return "deep"
    except (ValueError, UnicodeDecodeError):
        return "invalid"
    return "null"  # it parsed, and response_json() gives None only for a null


_JSON_KIND = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


def _not_object(c: _Checker, kind: str) -> None:
    c.error("not-object", f"the reply is a JSON {kind}, expected an object; Vapi reads a {c.mtype} reply as one")


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _reply_object(c: _Checker, ex: Exchange) -> dict[str, Any] | None:
    """The reply as a JSON object (messageResponse wrapper removed), or None after reporting why."""
    if ex.response_truncated:
        return None  # too large to have been captured whole: nothing reliable to check
    if not ex.response_body.strip():
        c.error("empty-reply", f"the app replied with an empty body; Vapi needs a JSON reply to {c.mtype}")
        return None
    body = ex.response_json()
    if body is None:
        why = _unparsed(ex.response_body)
        if why == "deep":
            c.warn("too-deep", "the reply is JSON nested too deeply (over about 1,000 levels) for vapi-dev to check")
        elif why == "null":
            _not_object(c, "null")
        else:
            c.error("not-json", f"the reply is not valid JSON; Vapi needs a JSON reply to {c.mtype}")
        return None
    if not isinstance(body, dict):
        _not_object(c, _JSON_KIND.get(type(body), "value"))
        return None
    ctype = (header(ex.response_headers, "content-type") or "").lower()
    if "json" not in ctype:
        c.warn(
            "content-type", f"the reply is JSON but its Content-Type is '{ctype or 'missing'}'; send application/json"
        )
    inner = body.get("messageResponse")
    return inner if isinstance(inner, dict) else body


_ABSENT = object()


def _plain_line(value: Any) -> bool:
    """A string without line breaks: what _check_text accepts, tested without building its messages."""
    return isinstance(value, str) and "\n" not in value and "\r" not in value


def _check_text(c: _Checker, where: str, key: str, value: Any, *, strict: bool) -> None:
    if c.skip(f"{key}-not-string" if not isinstance(value, str) else "line-break"):
        return
    if not isinstance(value, str):
        msg = f"{where} '{key}' is {type(value).__name__}, not a string; Vapi expects a string"
        if strict:
            c.error(f"{key}-not-string", msg)
        else:
            c.warn(f"{key}-not-string", msg + " (objects and numbers may not reach the model as intended)")
    elif "\n" in value or "\r" in value:
        c.error(
            "line-break",
            f"{where} '{key}' contains a line break; Vapi's docs say line breaks "
            "cause parsing errors — send a single line",
        )


def _check_tool_calls(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    results = reply.get("results")
    if results is None:
        if "error" in reply:  # a top-level {"error": "..."} is an accepted answer
            _check_text(c, "the reply", "error", reply["error"], strict=True)
        else:
            c.error(
                "missing-results", "the reply has no 'results' array; Vapi reports 'no result returned' to the model"
            )
        return
    if not isinstance(results, list):
        c.error(
            "results-not-array",
            f"'results' is {type(results).__name__}, not an array; "
            'send {"results": [{"toolCallId": …, "result": …}]}',
        )
        return
    wanted = _requested_ids(ex.payload)
    wanted_set = set(wanted)
    seen: list[str] = []
    seen_set: set[str] = set()
    for i, item in enumerate(results):  # one pass; messages are built only for what is wrong
        if not isinstance(item, dict):
            if not c.skip("result-not-object"):
                c.error("result-not-object", f"results[{i}] is not an object")
            continue
        tcid = item.get("toolCallId")
        if not isinstance(tcid, str) or not tcid:
            if not c.skip("missing-tool-call-id"):
                c.error("missing-tool-call-id", f"results[{i}] has no 'toolCallId'; Vapi cannot match it to a call")
        else:
            if tcid in seen_set:
                if not c.skip("duplicate-result"):
                    c.error("duplicate-result", f"tool call {_quoted(tcid)} is answered more than once")
            elif wanted_set and tcid not in wanted_set and not c.skip("unknown-tool-call-id"):
                c.error(
                    "unknown-tool-call-id",
                    f"results[{i}] answers {_quoted(tcid)}, which the request did not "
                    "contain; copy toolCallId exactly from the request",
                )
            seen.append(tcid)
            seen_set.add(tcid)
        result, error = item.get("result", _ABSENT), item.get("error", _ABSENT)
        if result is _ABSENT and error is _ABSENT and not c.skip("no-result-or-error"):
            c.error("no-result-or-error", f"results[{i}] has neither 'result' nor 'error'")
        if result is not _ABSENT and not _plain_line(result):
            _check_text(c, f"results[{i}]", "result", result, strict=False)
        if error is not _ABSENT and not _plain_line(error):
            _check_text(c, f"results[{i}]", "error", error, strict=True)
    missing = [t for t in wanted if t not in seen_set]
    for tcid in missing:
        if not c.skip("missing-result"):
            c.error("missing-result", f"tool call {_quoted(tcid)} got no result; Vapi reports 'no result returned'")
    answered = [t for t in seen if t in wanted_set]
    answered_set = set(answered)
    in_request_order = [t for t in wanted if t in answered_set]
    if not missing and len(set(answered)) == len(answered) and answered != in_request_order:
        c.warn("order", "results are not in the order of the request's tool calls; keep the order for parallel calls")


def _check_function_call(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    if "result" not in reply:
        c.error("missing-result", 'the reply has no \'result\'; send {"result": "…"}')
    else:
        _check_text(c, "the reply", "result", reply["result"], strict=False)


def _check_assistant_request(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    if "error" in reply:
        if not isinstance(reply["error"], str) or not reply["error"].strip():
            c.error("error-not-string", "'error' should be a non-empty string; Vapi speaks it to the caller")
        return
    shapes = [k for k in _ASSISTANT_SHAPES if k in reply]
    if "destination" in reply:
        _check_destination(c, reply["destination"])
        if shapes:
            c.warn(
                "destination-with-assistant",
                f"the reply has 'destination' and {', '.join(shapes)}; Vapi transfers and ignores the assistant fields",
            )
        return
    if not shapes:
        c.error(
            "no-assistant",
            "the reply names no assistant (assistantId, assistant, squadId, squad, "
            "workflowId, workflow), destination or error; Vapi ends the call",
        )
        return
    if len(shapes) > 1:
        c.error("ambiguous", f"the reply has {', '.join(shapes)}; send exactly one of them")
    for key in shapes:
        value = reply[key]
        if key.endswith("Id"):
            if not isinstance(value, str) or not value:
                c.error("invalid-id", f"'{key}' should be a non-empty string")
        elif not isinstance(value, dict):
            c.error("invalid-shape", f"'{key}' should be an object")


def _check_destination(c: _Checker, dest: Any) -> None:
    if not isinstance(dest, dict):
        c.error(
            "destination-invalid", '\'destination\' should be an object such as {"type": "number", "number": "+1…"}'
        )
    elif "type" not in dest:
        c.warn("destination-no-type", "'destination' has no 'type' (number, sip or assistant)")


def _check_destination_request(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    if "destination" in reply:
        _check_destination(c, reply["destination"])
    elif "error" in reply:
        _check_text(c, "the reply", "error", reply["error"], strict=True)
    else:
        c.error("missing-destination", "the reply has neither 'destination' nor 'error'; the transfer cannot happen")


def _check_knowledge_base(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    if "documents" not in reply and "message" not in reply:
        c.error("missing-documents", "the reply has neither 'documents' nor 'message'")
        return
    docs = reply.get("documents")
    if "documents" in reply and not isinstance(docs, list):
        c.error("documents-not-array", "'documents' should be an array")
    elif isinstance(docs, list):
        for i, doc in enumerate(docs):
            if not isinstance(doc, dict):
                c.error("document-not-object", f"documents[{i}] is not an object")
                continue
            if not isinstance(doc.get("content"), str):
                c.error("document-missing-content", f"documents[{i}] has no string 'content'")
            if not _is_number(doc.get("similarity")):
                c.error("document-bad-similarity", f"documents[{i}] has no numeric 'similarity'")
    if "message" in reply:
        msg = reply["message"]
        if not isinstance(msg, dict) or not isinstance(msg.get("content"), str):
            c.error("message-invalid", '\'message\' should be {"role": "assistant", "content": "…"}')


def _check_endpointing(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    value: Any = reply.get("timeoutSeconds")
    if "timeoutSeconds" not in reply:
        c.error("missing-timeout", "the reply has no 'timeoutSeconds'")
    elif not _is_number(value):
        c.error("timeout-not-number", "'timeoutSeconds' should be a number of seconds")
    elif value < 0:
        c.error("timeout-negative", "'timeoutSeconds' is negative")


def _check_predial(c: _Checker, reply: dict[str, Any], ex: Exchange) -> None:
    if "eligible" not in reply:
        c.error(
            "missing-eligible",
            "the reply has no 'eligible'; Vapi treats that as a pre-dial failure and does not place the call",
        )
    elif not isinstance(reply["eligible"], bool):
        c.error(
            "eligible-not-boolean", "'eligible' should be true or false; anything else means the call is not placed"
        )


_RULES: dict[str, Callable[[_Checker, dict[str, Any], Exchange], None]] = {
    "tool-calls": _check_tool_calls,
    "function-call": _check_function_call,
    "assistant-request": _check_assistant_request,
    "transfer-destination-request": _check_destination_request,
    "handoff-destination-request": _check_destination_request,
    "knowledge-base-request": _check_knowledge_base,
    "call.endpointing.request": _check_endpointing,
    "campaign.predial": _check_predial,
}


def _check_voice(c: _Checker, ex: Exchange) -> None:
    """A voice-request reply is raw PCM audio (mono 16-bit at message.sampleRate), never JSON; an empty
    one is silence (vapi-dev's own fallback)."""
    if not ex.response_bytes and not ex.response_body:
        return
    ctype = (header(ex.response_headers, "content-type") or "").lower()
    if "json" in ctype or isinstance(ex.response_json(), (dict, list)):
        c.error(
            "json-reply",
            "the reply is JSON, but Vapi plays a voice-request reply as raw PCM audio (mono 16-bit at "
            "message.sampleRate); send the audio bytes",
        )


def _has_error(ex: Exchange) -> bool:
    body = ex.response_json()
    return isinstance(body, dict) and "error" in body


def _redirected(c: _Checker, ex: Exchange, moved: Redirect, reply_needed: bool) -> None:
    """A 3xx: Vapi does not follow it, so say where it points and what to point at that address instead."""
    where = _quoted(moved.shown, URL_SHOWN)
    outcome = (
        f" instead of replying to {c.mtype}"
        if reply_needed
        else f", which Vapi logs as 'Your server rejected {c.mtype} webhook'"
    )
    fix = _redirect_fix(ex, moved)
    text = f"Vapi does not follow redirects: your app answered {ex.status} to {where}{outcome}; {fix}"
    (c.error if reply_needed else c.warn)("redirect", text)


def _redirect_fix(ex: Exchange, moved: Redirect) -> str:
    """What to point at the address the app redirects to: vapi-dev's target when the request was for the
    target itself (Vapi's "/"), the server URL's path when the address is the same route under the target,
    else either."""
    url = _quoted(moved.url, URL_SHOWN)
    if not moved.same_origin:
        return f"point the server URL (or vapi-dev's target) at {url} directly"
    if ex.path in ("", "/"):
        return f"point vapi-dev's target at {url} directly"
    forwarded = urlsplit(ex.forward_url).path
    prefix = forwarded[: -len(ex.path)] if forwarded.endswith(ex.path) else None
    wanted = urlsplit(moved.url)
    if prefix is not None and wanted.path.startswith(prefix):
        rest = wanted.path[len(prefix) :]
        rest = rest if rest.startswith("/") else "/" + rest
        rest += f"?{wanted.query}" if wanted.query else ""
        return f"point the server URL at <public URL>{_quoted(rest, URL_SHOWN)} directly"
    return f"point the server URL (or vapi-dev's target) at {url} directly"


def _deadline(ex: Exchange, mtype: str) -> Problem | None:
    ms = ex.duration_ms
    if not ex.reply_needed or ms is None or ex.deadline_s <= 0:
        return None
    took, limit = ms / 1000.0, ex.deadline_s
    share = took / limit
    figure = f"replied in {took:.1f} s, {share * 100:.0f} % of the {limit:g} s {mtype} deadline"
    if share > 1.0:
        return Problem("error", "deadline.missed", figure + "; Vapi had already given up")
    if share > DEADLINE_WARN_FRACTION:
        return Problem("warning", "deadline.near", figure)
    return None


def check_reply(ex: Exchange) -> list[Problem]:
    """Problems with the app's reply to a Vapi message: contract violations and slow replies.

    Empty for plain HTTP, for unfinished exchanges and for failed forwards (the error itself is
    shown instead). A fallback reply is checked like an app reply, without the deadline check.
    """
    if ex.message_type is None or ex.status is None or (ex.error and not ex.fallback):
        return []
    mtype = ex.message_type
    c = _Checker(mtype)
    reply_needed = type_info(mtype).reply_needed or ex.reply_needed
    moved = redirect_of(ex)
    if moved is not None:
        _redirected(c, ex, moved, reply_needed)
    elif not reply_needed:
        if not 200 <= ex.status < 300:
            c.warn(
                "rejected", f"the app answered {ex.status}; Vapi logs this as 'Your server rejected {mtype} webhook'"
            )
    elif mtype == "assistant-request" and ex.status >= 400 and _has_error(ex):
        c.error(
            "http-status",
            f"the app failed ({ex.status}), so Vapi counts a failed request (assistant-request-failed), not a "
            'declined call, and speaks no \'error\'; to decline on purpose answer 200 with {"error": "…"}',
        )
    elif mtype == "tool-calls" and ex.status != 200:
        c.error(
            "http-status",
            f"the app answered {ex.status}; tool replies must be HTTP 200 even on error, Vapi ignores any other status",
        )
    elif mtype == "voice-request" and ex.status != 200:
        c.error("http-status", f"the app answered {ex.status}; Vapi needs 200 with raw PCM audio")
    elif not 200 <= ex.status < 300:
        c.error("http-status", f"the app answered {ex.status}; Vapi treats a non-2xx reply as a failure")
    if not reply_needed:
        return c.done()
    rule = _RULES.get(mtype)
    if rule is not None and 200 <= ex.status < 300:
        reply = _reply_object(c, ex)
        if reply is not None:
            rule(c, reply, ex)
    elif mtype == "voice-request" and 200 <= ex.status < 300:
        _check_voice(c, ex)
    if not ex.fallback and not ex.error:
        late = _deadline(ex, mtype)
        if late is not None:
            c.add(late)
    return c.done()


def _one_line(text: str) -> str:
    return " ".join(text.split())


def fallback_reply(ex: Exchange, reason: str) -> tuple[int, bytes]:
    """(status, body) vapi-dev answers with when the app cannot: valid, and clearly marked.

    The body is JSON (send it as application/json), except voice-request: an empty audio body.
    """
    text = _one_line(f"vapi-dev fallback: {reason}")
    mtype = ex.message_type or ""
    body: Any
    if mtype == "tool-calls":
        results: list[dict[str, str]] = []
        seen: set[str] = set()
        try:
            calls = tool_calls(ex.payload)
        except RecursionError:  # arguments nested too deeply to read: answer without ids
            calls = []
        for tc in calls:
            if tc.id and tc.id not in seen:
                seen.add(tc.id)
                item = {"toolCallId": tc.id}
                if tc.name:
                    item["name"] = tc.name
                item["error"] = text
                results.append(item)
        body = {"results": results} if results else {"error": text}
    elif mtype == "function-call":
        body = {"result": text}
    elif mtype in ("assistant-request", "transfer-destination-request", "handoff-destination-request"):
        body = {"error": text}
    elif mtype == "knowledge-base-request":
        body = {"documents": []}
    elif mtype == "call.endpointing.request":
        body = {"timeoutSeconds": 0.5}
    elif mtype == "campaign.predial":
        body = {"eligible": False}
    elif mtype == "voice-request":
        return 200, b""
    else:
        body = {}
    return 200, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
