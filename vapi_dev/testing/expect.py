"""What a reply is expected to be: a fixture exchange's ``"expect"`` object, and snapshot comparison.

``"expect"`` (every key optional)::

    {"status": 200,
     "json": {"results": [{"result": "Sunny, 21 C"}]},        # a subset of the reply's JSON
     "paths": {"results.0.toolCallId": "call_1",               # the value at a JSON path equals …
               "results[0].result": {"regex": "^Sunny"}},      # … or (a string) matches a regex
     "headers": {"Content-Type": {"regex": "json"}},           # header values, names in any case
     "max_ms": 500}                                            # the reply within this many milliseconds

A subset matches when every key it names is in the reply with a matching value (objects recursively,
arrays item by item and of the same length, anything else equal). A path is dotted keys and array indexes
(``a.0.b``, ``a[0].b``, an optional leading ``$.``).

A snapshot is the reply recorded in the fixture: the status must be the same and the body the same JSON
(or text), except at the ``--ignore`` paths, which take ``*`` (one key, or part of one: ``*At``) and ``**``
(any depth); DEFAULT_IGNORE covers ids and timestamps. Both sides are masked before they are compared or
shown, so a masked fixture compares with the app's reply masked the same way.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from vapi_dev.errors import ExitStatus, VapiDevError
from vapi_dev.exchange import Headers, header, parse_json
from vapi_dev.redact import Masker

DEFAULT_IGNORE = (
    "**.id",
    "**.callId",
    "**.timestamp",
    "**.time",
    "**.date",
    "**.*At",
    "**.requestId",
    "**.traceId",
)
DIFF_CONTEXT = 2
IGNORED = "<ignored>"
_KEYS = ("status", "json", "paths", "headers", "max_ms")
_MISSING = object()


class ExpectError(VapiDevError):
    """An ``"expect"`` object that cannot be used; ``message`` says where and why."""

    exit_status = ExitStatus.USAGE


@dataclass(frozen=True)
class Matcher:
    """A value expected equal, or a regex a string must match (``{"regex": "…"}``, that one key alone)."""

    value: Any = None
    regex: re.Pattern[str] | None = None

    def matches(self, got: Any) -> bool:
        if self.regex is not None:
            return isinstance(got, str) and self.regex.search(got) is not None
        return bool((got == self.value and type(got) is type(self.value)) or _same_number(got, self.value))

    def describe(self) -> str:
        return f"matching /{self.regex.pattern}/" if self.regex is not None else _dump(self.value)


def _same_number(a: Any, b: Any) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (a, b)) and a == b


@dataclass(frozen=True)
class Expect:
    status: int | None = None
    json: Any = _MISSING
    paths: dict[str, Matcher] = field(default_factory=dict)
    headers: dict[str, Matcher] = field(default_factory=dict)
    max_ms: float | None = None


@dataclass(frozen=True)
class Failure:
    """Why a case failed: ``what`` (status, json, path …, header …, latency, snapshot, contract, deadline, send),
    one sentence, and the diff lines that show it (may be empty)."""

    what: str
    message: str
    diff: tuple[str, ...] = ()


def _matcher(raw: Any, where: str) -> Matcher:
    if isinstance(raw, dict) and set(raw) == {"regex"}:
        try:
            return Matcher(regex=re.compile(str(raw["regex"])))
        except re.error as exc:
            raise ExpectError(f"{where}: {raw['regex']!r} is not a regex ({exc}).") from None
    return Matcher(value=raw)


def parse_path(path: str) -> list[str]:
    """``$.a[0].b`` / ``a.0.b`` → ``["a", "0", "b"]``."""
    text = path.strip()
    text = text[1:] if text.startswith("$") else text
    text = re.sub(r"\[(\d+|\*\*?)\]", r".\1", text)
    return [p for p in text.split(".") if p != ""]


def parse_expect(raw: Any, where: str) -> Expect | None:
    """An Expect from a fixture's ``"expect"`` (None when there is none); ExpectError says what is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ExpectError(f"{where} is not an object.")
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ExpectError(f"{where} has unknown keys {', '.join(unknown)}; known: {', '.join(_KEYS)}.")
    status, max_ms = raw.get("status"), raw.get("max_ms")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599):
        raise ExpectError(f"{where}: status {status!r} is not an HTTP status.")
    if max_ms is not None and (not isinstance(max_ms, (int, float)) or isinstance(max_ms, bool) or max_ms <= 0):
        raise ExpectError(f"{where}: max_ms {max_ms!r} is not a positive number.")
    for key in ("paths", "headers"):
        if not isinstance(raw.get(key, {}), dict):
            raise ExpectError(f"{where}: {key} is not an object.")
    return Expect(
        status=status,
        json=raw.get("json", _MISSING),
        paths={p: _matcher(v, f"{where}: paths.{p}") for p, v in raw.get("paths", {}).items()},
        headers={h: _matcher(v, f"{where}: headers.{h}") for h, v in raw.get("headers", {}).items()},
        max_ms=None if max_ms is None else float(max_ms),
    )


def value_at(obj: Any, path: Sequence[str]) -> Any:
    """The value at ``path`` (keys and indexes), or _MISSING."""
    for key in path:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and key.isdigit() and int(key) < len(obj):
            obj = obj[int(key)]
        else:
            return _MISSING
    return obj


def _subset(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        return isinstance(got, dict) and all(k in got and _subset(v, got[k]) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_subset, want, got))
    return Matcher(value=want).matches(got)


def _project(want: Any, got: Any) -> Any:
    """``got`` cut down to the keys ``want`` names, so a diff of the two shows only what differs."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: _project(want[k], got[k]) for k in want if k in got}
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [_project(w, g) for w, g in zip(want, got, strict=True)]
    return got


def _dump(value: Any) -> str:
    return "(missing)" if value is _MISSING else json.dumps(value, ensure_ascii=False)


def _pretty(value: Any) -> list[str]:
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).splitlines()
    except (TypeError, ValueError, RecursionError):
        return [repr(value)]


DIFF_MAX_LINES = 2000  # of each side, once the lines both share at the start and the end are set aside


def diff(old: list[str], new: list[str], old_name: str, new_name: str) -> tuple[str, ...]:
    """A unified diff of ``old`` and ``new``. difflib is quadratic in the worst case, so the lines both sides
    share at the start and end are set aside first (hunk line numbers stay right) and what is left of each
    side is cut at DIFF_MAX_LINES, with a line saying so: a 30 MB reply costs a bounded diff, not minutes."""
    head = 0
    limit = min(len(old), len(new))
    while head < limit and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < limit - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    start = max(0, head - DIFF_CONTEXT)
    keep = max(0, tail - DIFF_CONTEXT)
    a, b = old[start : len(old) - keep], new[start : len(new) - keep]
    cut = len(a) > DIFF_MAX_LINES or len(b) > DIFF_MAX_LINES
    a, b = a[:DIFF_MAX_LINES], b[:DIFF_MAX_LINES]
    lines = list(difflib.unified_diff(a, b, old_name, new_name, lineterm="", n=DIFF_CONTEXT))
    if start:  # hunk headers count from the slice: shift them back to the whole texts' line numbers
        lines = [_shift(line, start) if line.startswith("@@") else line for line in lines]
    if cut:
        lines.append(f"… the diff stops here: over {DIFF_MAX_LINES} differing lines")
    return tuple(lines)


_HUNK = re.compile(r"^@@ -(\d+)(,\d+)? \+(\d+)(,\d+)? @@")


def _shift(line: str, by: int) -> str:
    m = _HUNK.match(line)
    if m is None:
        return line
    old_at, new_at = int(m.group(1)) + by, int(m.group(3)) + by
    return f"@@ -{old_at}{m.group(2) or ''} +{new_at}{m.group(4) or ''} @@" + line[m.end() :]


def check_expect(exp: Expect, status: int, headers: Headers, body: bytes, ms: float, mask: Masker) -> list[Failure]:
    """How the reply falls short of ``exp`` (empty: it meets it). Values quoted are masked."""
    out: list[Failure] = []
    if exp.status is not None and status != exp.status:
        out.append(Failure("status", f"expected status {exp.status}, got {status}"))
    data = parse_json(body) if exp.json is not _MISSING or exp.paths else None
    if exp.json is not _MISSING and not _subset(exp.json, data):
        shown = mask.data(_project(exp.json, data)) if data is not None else mask.text(body.decode("utf-8", "replace"))
        lines = _pretty(shown) if data is not None else shown.splitlines()
        out.append(
            Failure(
                "json",
                "the reply's JSON does not contain the expected subset",
                diff(_pretty(mask.data(exp.json)), lines, "expected (subset)", "reply"),
            )
        )
    for path, m in exp.paths.items():
        keys = parse_path(path)
        if not m.matches(value_at(data, keys)):
            shown = _dump(value_at(mask.data(data), keys))  # masked in place: a value under a secret key too
            out.append(Failure(f"path {path}", f"expected {mask.text(m.describe())}, got {shown}"))
    for name, m in exp.headers.items():
        value = header(headers, name)
        if not m.matches(value):
            got = "(missing)" if value is None else mask.headers([(name, value)])[0][1]
            out.append(Failure(f"header {name}", f"expected {mask.text(m.describe())}, got {got}"))
    if exp.max_ms is not None and ms > exp.max_ms:
        out.append(Failure("latency", f"replied in {ms:.0f} ms, over the expected {exp.max_ms:g} ms"))
    return out


def _ignored(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(_ignored(rest, path[i:]) for i in range(len(path) + 1))
    return bool(path) and fnmatchcase(path[0], head) and _ignored(rest, path[1:])


def blank(obj: Any, patterns: Sequence[Sequence[str]], path: tuple[str, ...] = ()) -> Any:
    """``obj`` with the value at every path matching one of ``patterns`` replaced by IGNORED."""
    if path and any(_ignored(p, path) for p in patterns):
        return IGNORED
    if isinstance(obj, dict):
        return {k: blank(v, patterns, (*path, str(k))) for k, v in obj.items()}
    if isinstance(obj, list):
        return [blank(v, patterns, (*path, str(i))) for i, v in enumerate(obj)]
    return obj


def same_json(a: Any, b: Any) -> bool:
    """``a == b`` as JSON values: ``true`` is not ``1`` nor ``false`` ``0`` (Python's == says they are), while
    ``1`` and ``1.0`` are the same number."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(same_json, a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return bool(a == b) and isinstance(a, (int, float)) == isinstance(b, (int, float))


def compare_snapshot(
    rec_status: int | None, rec_body: bytes, status: int, body: bytes, ignore: Sequence[str], mask: Masker
) -> list[Failure]:
    """How the reply differs from the recorded one, outside the ``ignore`` paths; both masked first."""
    out: list[Failure] = []
    if rec_status != status:
        out.append(Failure("snapshot", f"status {status}, recorded {rec_status}"))
    old, new = parse_json(rec_body), parse_json(body)
    if old is not None and new is not None:
        patterns = [parse_path(p) for p in ignore]
        old_v, new_v = blank(mask.data(old), patterns), blank(mask.data(new), patterns)
        if not same_json(old_v, new_v):
            lines = diff(_pretty(old_v), _pretty(new_v), "recorded reply", "new reply")
            out.append(Failure("snapshot", "the reply differs from the recorded one", lines))
    elif rec_body != body:
        old_t, new_t = (mask.text(b.decode("utf-8", "replace")) for b in (rec_body, body))
        if old_t != new_t:
            lines = diff(old_t.splitlines(), new_t.splitlines(), "recorded reply", "new reply")
            out.append(Failure("snapshot", "the reply differs from the recorded one", lines))
    return out
