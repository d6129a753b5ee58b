"""``--samples``: a conformance run with a sample of every message type (trigger's set), as a table.

Each reply gets one verdict. A reply-needed type is *answered correctly* (2xx, its reply contract kept,
within its deadline), *failed contract*, *too slow* (over its deadline) or *rejected* (not 2xx: the app does
not handle it). An informational type is *acknowledged* (2xx within ``ack_within`` seconds), *too slow* or
*rejected*. No reply at all (nothing listening, a reset, a timeout) is *failed*. A rejection is what the app
chose and is not a failure of the run; the other verdicts are.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vapi_dev.testing.expect import Failure
from vapi_dev.testing.load import Case, FileCases
from vapi_dev.testing.run import Options, Outcome, run_files

if TYPE_CHECKING:
    from rich.table import Table

    from vapi_dev.redact import Masker

ANSWERED, ACKNOWLEDGED, REJECTED = "answered correctly", "acknowledged", "rejected"
FAILED_CONTRACT, TOO_SLOW, FAILED = "failed contract", "too slow", "failed"
VERDICT_STYLE = {
    ANSWERED: "green",
    ACKNOWLEDGED: "green",
    REJECTED: "yellow",
    FAILED_CONTRACT: "bold red",
    TOO_SLOW: "bold red",
    FAILED: "bold red",
}
FAILING = frozenset({FAILED_CONTRACT, TOO_SLOW, FAILED})
DEFAULT_ACK_WITHIN_S = 1.0
SOURCE = "samples"


def sample_files() -> FileCases:
    """One case per sample type, in trigger --list's order."""
    from vapi_dev.journal.fixtures import payload_request
    from vapi_dev.vapi.samples import SAMPLE_TYPES, sample

    cases = [Case(SOURCE, i, payload_request(sample(t))) for i, t in enumerate(SAMPLE_TYPES)]
    return FileCases(SOURCE, Path(SOURCE), "samples", cases)


def _reply_needed(o: Outcome) -> bool:
    return o.exchange is not None and o.exchange.reply_needed


def verdict(o: Outcome, ack_within_s: float) -> str:
    """The verdict of one sample's outcome; a rejection's failures become a warning (the outcome passes), a
    slow acknowledgement gets a latency failure."""
    ex = o.exchange
    if ex is None or ex.status is None:
        return FAILED
    if not 200 <= ex.status < 300:
        o.warnings = [f"rejected: the app answered {ex.status}", *o.warnings]
        o.failures = [f for f in o.failures if f.what not in ("status", "contract")]
        return REJECTED if not o.failures else FAILED_CONTRACT
    if any(f.what == "deadline" for f in o.failures):
        return TOO_SLOW
    if o.failures:
        return FAILED_CONTRACT
    if _reply_needed(o):
        return ANSWERED
    ms = ex.duration_ms or 0.0
    if ms > ack_within_s * 1000:
        o.failures.append(Failure("latency", f"acknowledged in {ms:.0f} ms, over {ack_within_s:g} s (--ack-within)"))
        return TOO_SLOW
    return ACKNOWLEDGED


async def run_samples(
    opts: Options, ack_within_s: float = DEFAULT_ACK_WITHIN_S
) -> tuple[FileCases, list[Outcome], list[str]]:
    """Every sample sent and judged: (the cases, their outcomes, each outcome's verdict)."""
    fc = sample_files()
    outcomes = (await run_files([fc], opts))[0]
    return fc, outcomes, [verdict(o, ack_within_s) for o in outcomes]


def table(outcomes: Sequence[Outcome], verdicts: Sequence[str], mask: Masker) -> Table:
    from rich.table import Table
    from rich.text import Text

    from vapi_dev.output.lines import printable

    t = Table(box=None, pad_edge=False)
    t.add_column("type", no_wrap=True)
    t.add_column("reply needed", no_wrap=True)
    t.add_column("status", justify="right")
    t.add_column("latency", justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("why", overflow="fold", ratio=1)
    for o, v in zip(outcomes, verdicts, strict=True):
        ex = o.exchange
        needed = f"yes ({ex.deadline_s:g} s)" if ex is not None and ex.reply_needed else "no" if ex else "?"
        status = "—" if ex is None or ex.status is None else str(ex.status)
        ms = "—" if o.ms is None else f"{o.ms:.0f} ms"
        why = [f.message for f in o.failures] or o.warnings
        t.add_row(
            Text(printable(o.case.request.label)),
            needed,
            status,
            ms,
            Text(v, style=VERDICT_STYLE[v]),
            Text(printable(mask.text("; ".join(why)), 300)),  # the app's words: never markup
        )
    return t


def summary(outcomes: Sequence[Outcome], verdicts: Sequence[str]) -> str:
    """``reply needed: 2 answered correctly, 7 rejected · informational: 22 acknowledged``."""
    parts = []
    for title, needed in (("reply needed", True), ("informational", False)):
        counts = Counter(
            v for o, v in zip(outcomes, verdicts, strict=True) if _reply_needed(o) == needed and o.exchange
        )
        if counts:
            parts.append(f"{title}: " + ", ".join(f"{n} {v}" for v, n in counts.most_common()))
    failed = sum(o.exchange is None for o in outcomes)
    if failed:
        parts.append(f"{failed} got no reply")
    return " · ".join(parts)
