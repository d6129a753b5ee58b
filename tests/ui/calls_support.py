"""Helpers of the calls view's tests: a whole call as `vapi-dev trigger call` sends it, answered like a tool
server would, and a tiny App that shows CallsScreen over a list of exchanges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType

from tests.support.exchanges import make_exchange
from vapi_dev.exchange import Exchange
from vapi_dev.redact import Masker
from vapi_dev.ui.calls import CallsScreen
from vapi_dev.vapi.contracts import check_reply
from vapi_dev.vapi.samples import TOOL_CALL_ID, call_sequence, sample

# A fixed local time, so that the screens (and their snapshots) show the same clock in every time zone.
T0 = datetime(2026, 1, 2, 12, 0, 0).timestamp()
WEATHER = "Sunny, 21 C"


def tool_reply(result: str = WEATHER, call_id: str = TOOL_CALL_ID) -> dict[str, Any]:
    return {"results": [{"name": "get_weather", "toolCallId": call_id, "result": result}]}


def at(exchange: Exchange, when: float) -> Exchange:
    exchange.received_at = when
    return exchange


def call_exchanges(
    call_id: str, start: float = T0, *, tool_result: str = WEATHER, ended: bool = True
) -> list[Exchange]:
    """The exchanges of a `trigger call` (received when Vapi's timestamps say), each answered by the app:
    tool-calls with ``tool_result`` after 42 ms, the others with {} after 3 ms. ``ended`` False: the call is
    still in progress (no ended status, no end-of-call-report)."""
    out = []
    for payload in call_sequence(call_id, start_ms=int(start * 1000)):
        msg = payload["message"]
        mtype = msg["type"]
        if not ended and (mtype == "end-of-call-report" or msg.get("status") == "ended"):
            continue
        tool = mtype == "tool-calls"
        ex = make_exchange(
            mtype, tool_reply(tool_result) if tool else {}, payload=payload, took_s=0.042 if tool else 0.003
        )
        out.append(at(ex, msg["timestamp"] / 1000))
    return out


def one(mtype: str, call_id: str, when: float, reply: Any = None, **message: Any) -> Exchange:
    """One exchange of ``mtype`` in call ``call_id`` at ``when``, its message fields set from ``message``."""
    payload = sample(mtype, call_id, timestamp_ms=int(when * 1000), **message)
    return at(make_exchange(mtype, reply if reply is not None else {}, payload=payload), when)


class CallsApp(App[None]):
    """Shows CallsScreen over ``exchanges`` (the list may grow while it runs); what it dismisses with is
    appended to ``chosen``. ``q`` quits, as the inspector's app binding does."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit", "Quit")]

    def __init__(self, exchanges: Sequence[Exchange], mask: Masker | None = None) -> None:
        super().__init__()
        self.exchanges = list(exchanges)
        self.mask = mask or Masker()
        self.chosen: list[str | None] = []

    def on_mount(self) -> None:
        self.push_screen(CallsScreen(lambda: self.exchanges, self.mask), callback=self.chosen.append)


ASSISTANT_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"  # call ids as Vapi writes them: UUIDs
CALLER_ID = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
TRANSFER_ID = "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b"


def busy_calls() -> list[Exchange]:
    """Three calls for the screens' snapshots: a whole `trigger call`; one where the tool server failed and the
    caller asked for a person (a transfer), with hostile text in a transcript; and one still in progress."""
    first = call_exchanges(ASSISTANT_ID)
    t = T0 + 120
    second = [
        one("status-update", TRANSFER_ID, t, status="in-progress"),
        one("transcript", TRANSFER_ID, t + 2, role="assistant", transcript="Hi, this is the weather line."),
        one("transcript", TRANSFER_ID, t + 5, role="user", transcript="\x1b[2J[bold]Person[/bold], please"),
        at(make_exchange("tool-calls", {"error": "upstream down"}, status=500, call_id=TRANSFER_ID, took_s=1.9), t + 6),
        one(
            "transfer-destination-request",
            TRANSFER_ID,
            t + 8,
            {"destination": {"type": "number", "number": "+15555550111"}},
        ),
        one("transfer-update", TRANSFER_ID, t + 9, destination={"type": "number", "number": "+15555550111"}),
        one(
            "end-of-call-report",
            TRANSFER_ID,
            t + 70,
            endedReason="assistant-forwarded-call",
            durationSeconds=70,
            cost=0.31,
        ),
    ]
    for ex in second:
        ex.problems = check_reply(ex)  # as the receiver judges each reply
    third = call_exchanges(CALLER_ID, T0 + 300, ended=False)
    return [*first, *second, *third]
