"""Finding and reading fixtures: every file becomes the cases of one call (in recorded order), or a BadFile.

Read: export's fixtures (``{"version": 1, "exchanges": […]}``, each exchange optionally with an ``"expect"``
object and its recorded ``"reply"``, the snapshot), ``show --json`` records (one exchange, its reply
recorded) and bare Vapi payloads (``{"message": {…}}``, one request, nothing recorded). A directory is
searched for ``*.json`` files, in name order. A file that cannot be read, parsed or sent as it is (its
credentials were masked and none are given to sign it again) is a BadFile saying why; the others still run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vapi_dev.errors import VapiDevError
from vapi_dev.journal.fixtures import Request, decode_body, masked_headers, requests_of
from vapi_dev.redact import MASK
from vapi_dev.testing.expect import Expect, parse_expect

MAX_FIXTURE_BYTES = 256 * 1024 * 1024  # a file larger than this is refused, not read into memory
# The option that signs again each header Vapi's credentials send (a fixture keeps them only masked).
SIGNED_BY = {"x-vapi-secret": "--secret", "authorization": "--bearer"}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # what an HTTP method or header name may be (RFC 9110)
_BREAKS_HEADER = re.compile(r"[\r\n\x00]")  # what no header value may carry (it would end the header)


@dataclass(frozen=True)
class Recorded:
    """The reply a fixture recorded for an exchange: the snapshot ``--snapshot`` compares with."""

    status: int | None
    body: bytes
    error: str | None = None


@dataclass(frozen=True)
class Case:
    """One exchange to send and check."""

    source: str  # the file, as given or found
    index: int  # its place in the file (0-based)
    request: Request
    expect: Expect | None = None
    recorded: Recorded | None = None

    @property
    def name(self) -> str:
        return f"{self.index} {self.request.label or self.request.method + ' ' + self.request.path}"

    @property
    def id(self) -> str:
        return f"{self.source}::{self.name}"


@dataclass
class FileCases:
    """The cases of one file, sent in order; ``kind`` says how they were written (fixture, show, payload)."""

    source: str
    path: Path
    kind: str
    cases: list[Case] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)  # headers it kept only masked (signed again)


@dataclass(frozen=True)
class BadFile:
    """A path that cannot run: ``message`` names it and says why."""

    source: str
    message: str


class FixtureError(VapiDevError):
    """A fixture that cannot be used as it is; ``message`` names the file and says why."""


def find(paths: list[Path]) -> tuple[list[Path], list[BadFile]]:
    """The fixture files of ``paths`` (files as given, directories searched for *.json), and the paths that
    are neither."""
    files: list[Path] = []
    bad: list[BadFile] = []
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*.json") if f.is_file())
            if not found:
                bad.append(BadFile(str(p), f"{p}: the directory holds no *.json fixture."))
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            bad.append(BadFile(str(p), f"{p}: no such file or directory."))
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)  # a file given twice (or inside a directory given too) runs once
    return list(unique.values()), bad


def _recorded(reply: Any, source: str, n: int) -> Recorded | None:
    if reply is None:
        return None
    if not isinstance(reply, dict):
        raise FixtureError(f"{source}: exchange {n}'s reply is not an object.")
    status = reply.get("status")
    if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
        raise FixtureError(f"{source}: exchange {n}'s reply status {status!r} is not a number.")
    error = reply.get("error")
    return Recorded(status, decode_body(reply), str(error) if error else None)


def _fixture_cases(source: str, raw: bytes, data: dict[str, Any]) -> list[Case]:
    reqs = requests_of(data, raw, source)
    cases = []
    for n, (req, item) in enumerate(zip(reqs, data["exchanges"], strict=True)):
        try:
            expect = parse_expect(item.get("expect"), f"{source}: exchange {n}'s expect")
            cases.append(Case(source, n, req, expect, _recorded(item.get("reply"), source, n)))
        except (TypeError, ValueError) as exc:
            raise FixtureError(f"{source}: exchange {n}'s reply is malformed ({exc}).") from exc
    return cases


def _show_case(source: str, data: dict[str, Any]) -> Case:
    """A ``show --json`` record: its request (masked data, or text) sent again, its reply recorded."""
    body = data.get("request")
    if isinstance(body, (dict, list)):
        raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    else:
        raw = str(body or "").encode()
    try:
        headers = [(str(k), str(v)) for k, v in data.get("headers") or []]
    except (TypeError, ValueError) as exc:
        raise FixtureError(f"{source}: its headers are malformed ({exc}).") from exc
    req = Request(
        str(data.get("method") or "POST"),
        str(data.get("path") or "/"),
        str(data.get("query") or ""),
        headers,
        raw,
        str(data.get("message_type") or ""),
    )
    status = data.get("status")
    reply = data.get("response")
    recorded = None
    if isinstance(status, int) and not isinstance(status, bool):
        # show --json has the reply as pretty text: compared as JSON when it is JSON, so layout is no difference
        recorded = Recorded(status, str(reply or "").encode(), data.get("error") or None)
    return Case(source, 0, req, parse_expect(data.get("expect"), f"{source}: its expect"), recorded)


def check_sendable(case: Case) -> None:
    """FixtureError when the request cannot go on the wire as it is: a method or header name that is not a
    token, a header value with a line break, a path that does not start with / (it would name another host)."""
    req, where = case.request, f"{case.source}: exchange {case.index}'s"
    if not _TOKEN.fullmatch(req.method):
        raise FixtureError(f"{where} method {req.method!r} is not an HTTP method.")
    if not req.path.startswith("/"):
        raise FixtureError(f"{where} path {req.path!r} does not start with /.")
    for name, value in req.headers:
        if not _TOKEN.fullmatch(name):
            raise FixtureError(f"{where} header name {name!r} is not a header name.")
        if _BREAKS_HEADER.search(value):  # the value is not quoted: it may be a credential
            raise FixtureError(f"{where} header {name!r} has a control character in its value.")


def load(path: Path, source: str | None = None) -> FileCases:
    """The cases of one file; raises VapiDevError (a FixtureError, or the fixture reader's) saying why not."""
    source = source or str(path)
    try:
        if path.stat().st_size > MAX_FIXTURE_BYTES:
            raise FixtureError(f"{source} is larger than {MAX_FIXTURE_BYTES // 2**20} MB; split it.")
        raw = path.read_bytes()
    except OSError as exc:
        raise FixtureError(f"cannot read {source} ({exc.strerror}).") from None
    try:
        data = json.loads(raw)
    except RecursionError:
        raise FixtureError(f"{source} is JSON nested too deeply to read.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise FixtureError(f"{source} is not JSON ({exc}); pass an export fixture or a Vapi payload.") from None
    if isinstance(data, dict) and data.get("event") == "exchange" and "request" in data:
        out = FileCases(source, path, "show", [_show_case(source, data)])
    elif isinstance(data, dict) and isinstance(data.get("exchanges"), list):
        out = FileCases(source, path, "fixture", _fixture_cases(source, raw, data))
        if not out.cases:
            raise FixtureError(f"{source} is a fixture with no exchanges.")
    else:
        out = FileCases(source, path, "payload", [Case(source, 0, r) for r in requests_of(data, raw, source)])
    for case in out.cases:
        check_sendable(case)
    out.masked = masked_headers([c.request for c in out.cases], MASK)
    return out


def check_signing(fc: FileCases, can_sign: bool) -> None:
    """Refuse a file whose credentials were masked when nothing can sign it again: it would fail auth."""
    if fc.masked and not can_sign:
        names = ", ".join(fc.masked)
        wanted = sorted({SIGNED_BY.get(n.lower(), "--hmac-secret") for n in fc.masked})
        raise FixtureError(
            f"{fc.source}: its {names} header(s) were masked on export, so sent as it is it would fail "
            f"authentication; give the credential to sign it again ({' or '.join(wanted)}, or their -file forms)."
        )


def load_all(paths: list[Path], can_sign: bool) -> tuple[list[FileCases], list[BadFile]]:
    """Every fixture of ``paths``: the files that can run, and those that cannot (with why)."""
    files, bad = find(paths)
    good: list[FileCases] = []
    for f in files:
        try:
            fc = load(f)
            check_signing(fc, can_sign)
        except VapiDevError as exc:
            bad.append(BadFile(str(f), exc.message))
        else:
            good.append(fc)
    return good, bad
