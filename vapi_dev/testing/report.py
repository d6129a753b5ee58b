"""How a test run is told: a progress line per file, each failure explained (the exchange, the problem, a
diff), a summary line; or NDJSON records (``--json``); and JUnit XML (``--junit``).

Everything quoted from a fixture or the app is masked (the run's Masker) and has its control characters
escaped (``output/lines.printable``) before it reaches the terminal, a record or the XML.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from vapi_dev.output.lines import printable, printable_data

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import BadFile, FileCases
    from vapi_dev.testing.run import Outcome

BODY_LINES = 20  # lines of a reply body shown under a failure that has no diff
DIFF_LINES = 60  # lines of a diff shown under a failure
RECORD_DIFF_LINES = 1000  # lines of a diff in a --json record
LINE_LIMIT = 1000  # characters of one line of a body, diff or message (a reply can be one line of megabytes)
Lines = list[tuple[str, str]]  # (text, rich style)


@dataclass
class Summary:
    passed: int = 0
    failed: int = 0
    warnings: int = 0
    bad_files: int = 0
    updated: int = 0
    seconds: float = 0.0

    def text(self) -> str:
        parts = [f"{self.passed} passed", f"{self.failed} failed"]
        if self.bad_files:
            parts.append(f"{self.bad_files} bad file{'s' * (self.bad_files != 1)}")
        if self.warnings:
            parts.append(f"{self.warnings} warning{'s' * (self.warnings != 1)}")
        if self.updated:
            parts.append(f"{self.updated} snapshot{'s' * (self.updated != 1)} updated")
        return ", ".join(parts) + f" in {self.seconds:.2f} s"

    def to_json(self) -> dict[str, Any]:
        return {"event": "summary", **{k: getattr(self, k) for k in self.__dataclass_fields__}}


def summarize(outcomes: Sequence[Outcome], bad: int, updated: int, seconds: float) -> Summary:
    passed = sum(o.passed for o in outcomes)
    warnings = sum(len(o.warnings) for o in outcomes)
    return Summary(passed, len(outcomes) - passed, warnings, bad, updated, round(seconds, 3))


def _body(raw: bytes, mask: Masker) -> list[str]:
    view, is_json = mask.body(raw)
    if is_json:
        try:
            view = json.dumps(view, indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            view = mask.text(raw.decode("utf-8", "replace"))
    return str(view).splitlines() or ["(empty)"]


def headline(o: Outcome, mask: Masker) -> str:
    """``POST /path → 200 in 12 ms (URL)``: the exchange a failure is about."""
    req = o.case.request
    where = f"{req.method} {mask.text(req.path)}{'?' + mask.text(req.query) if req.query else ''}"
    ex = o.exchange
    got = "no reply" if ex is None else f"{ex.status} in {ex.duration_ms or 0:.0f} ms"
    return printable(f"{where} → {got}  ({mask.text(o.url)})", None)


def explain(o: Outcome, mask: Masker) -> Lines:
    """The lines that explain one outcome: the exchange, each failure (with its diff), the warnings, and the
    reply's body when no diff shows it. Masked and printable."""
    out: Lines = [(headline(o, mask), "bold")]
    diffed = False
    for f in o.failures:
        out.append((printable(f"✗ {f.what}: {f.message}", LINE_LIMIT), "red"))
        shown = f.diff[:DIFF_LINES]
        for line in shown:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            out.append(("    " + printable(line, LINE_LIMIT), style))
        if len(f.diff) > len(shown):
            out.append((f"    … {len(f.diff) - len(shown)} more lines of diff", "dim"))
        diffed = diffed or bool(f.diff)
    out += [(printable(f"⚠ {w}", LINE_LIMIT), "yellow") for w in o.warnings]
    if o.exchange is not None and not diffed:
        body = _body(o.exchange.response_body, mask)
        out.append(("  reply body:", "dim"))
        out += [("    " + printable(line, LINE_LIMIT), "") for line in body[:BODY_LINES]]
        if len(body) > BODY_LINES:
            out.append((f"    … {len(body) - BODY_LINES} more lines", "dim"))
    return out


def plain(lines: Lines) -> str:
    return "\n".join(text for text, _ in lines)


class TerminalReport:
    """pytest-like output on a rich Console (colour only on a terminal, never with NO_COLOR)."""

    def __init__(self, console: Console, mask: Masker, total: int) -> None:
        self.c = console
        self.mask = mask
        self.total = max(1, total)
        self.done = 0

    def _line(self, text: str, style: str = "") -> None:
        self.c.print(text, style=style or None, markup=False, highlight=False, soft_wrap=True)

    def bad_file(self, b: BadFile) -> None:
        self._line(printable(f"✗ bad fixture: {self.mask.text(b.message)}", None), "bold red")

    def file_done(self, fc: FileCases, outcomes: list[Outcome]) -> None:
        from rich.text import Text

        self.done += len(outcomes)
        line = Text(printable(self.mask.text(fc.source), None) + " ")
        for o in outcomes:
            line.append("." if o.passed else "F", style="green" if o.passed else "bold red")
        line.append(f" [{self.done * 100 // self.total:3d}%]")
        self.c.print(line, soft_wrap=True)

    def failures(self, outcomes: Sequence[Outcome]) -> None:
        failed = [o for o in outcomes if not o.passed]
        if not failed:
            return
        self.c.rule("FAILURES", style="red")
        for o in failed:
            self.c.rule(printable(self.mask.text(o.case.id), None), style="red", characters="_")
            for text, style in explain(o, self.mask):
                self._line(text, style)

    def note(self, text: str) -> None:
        self._line(printable(self.mask.text(text), None), "yellow")

    def summary(self, s: Summary) -> None:
        style = "bold red" if s.failed or s.bad_files else "bold green"
        self.c.rule(s.text(), style=style)


def _cut(text: str) -> str:
    return text if len(text) <= LINE_LIMIT else text[: LINE_LIMIT - 1] + "…"


def case_record(o: Outcome, mask: Masker) -> dict[str, Any]:
    """The NDJSON record of one outcome (masked, control characters escaped where JSON does not)."""
    ex = o.exchange
    rec = {
        "event": "case",
        "file": mask.text(o.case.source),
        "index": o.case.index,
        "name": mask.text(o.case.name),
        "message_type": o.case.request.label or None,
        "passed": o.passed,
        "url": mask.text(o.url),
        "status": None if ex is None else ex.status,
        "duration_ms": None if ex is None or ex.duration_ms is None else round(ex.duration_ms, 3),
        "failures": [
            {"what": f.what, "message": _cut(f.message), "diff": [_cut(line) for line in f.diff[:RECORD_DIFF_LINES]]}
            for f in o.failures
        ],
        "warnings": [_cut(w) for w in o.warnings],
        "snapshot_changed": o.snapshot_changed,
    }
    return dict(printable_data(rec))


class NdjsonReport:
    """``--json``: one record per line: ``bad-file``, ``case`` (as each file finishes), ``note``, ``summary``."""

    def __init__(self, stream: TextIO, mask: Masker) -> None:
        self.stream = stream
        self.mask = mask

    def _write(self, rec: dict[str, Any]) -> None:
        self.stream.write(json.dumps(rec, ensure_ascii=False) + "\n")
        self.stream.flush()

    def bad_file(self, b: BadFile) -> None:
        m = self.mask
        self._write(printable_data({"event": "bad-file", "file": m.text(b.source), "error": m.text(b.message)}))

    def file_done(self, fc: FileCases, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            self._write(case_record(o, self.mask))

    def failures(self, outcomes: Sequence[Outcome]) -> None:
        pass  # each case record carries its failures

    def note(self, text: str) -> None:
        self._write({"event": "note", "message": printable(self.mask.text(text), None)})

    def summary(self, s: Summary) -> None:
        self._write(s.to_json())
