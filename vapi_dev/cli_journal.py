"""The journal commands: events, show, replay, trigger and export (registered by cli.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn
from urllib.parse import urlsplit

import aiohttp
import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.table import Table

from vapi_dev.auth import AuthConfig, AuthConfigError, sign
from vapi_dev.contracts import check_reply
from vapi_dev.exchange import Exchange, Headers
from vapi_dev.journal import Journal, JournalError, default_journal_path
from vapi_dev.redact import MASK, redact_headers, redact_payload
from vapi_dev.samples import (
    SAMPLE_TYPES,
    Request,
    SampleError,
    apply_set,
    call_sequence,
    fixture,
    load_requests,
    payload_request,
    resend_headers,
    sample,
)
from vapi_dev.vapi import MESSAGE_TYPES, summarize, type_info

DEFAULT_TRIGGER_URL = "http://127.0.0.1:4242"

JournalOpt = Annotated[Path | None, typer.Option("--journal", help="Journal file (default: user data dir).")]
SecretOpt = Annotated[str | None, typer.Option(
    "--secret", envvar="VAPI_DEV_SECRET", help="Send X-Vapi-Secret with this value.", show_default=False)]
BearerOpt = Annotated[str | None, typer.Option(
    "--bearer", envvar="VAPI_DEV_BEARER", help="Send Authorization: Bearer TOKEN.", show_default=False)]
HmacOpt = Annotated[str | None, typer.Option(
    "--hmac-secret", envvar="VAPI_DEV_HMAC_SECRET", help="Sign like Vapi's HMAC credential (sha256).",
    show_default=False)]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each reply.")]


@dataclasses.dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    ms: float


def _fail(message: str, code: int = 1) -> NoReturn:
    Console(stderr=True, highlight=False).print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def _console() -> Console:
    # Piped output: one row per line rather than wrapping at 80 columns.
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=wide)


def _open(path: Path | None) -> Journal:
    try:
        return Journal(path or default_journal_path(), create=False)
    except JournalError as exc:
        _fail(exc.message)


def _get(journal: Journal, key: str) -> Exchange:
    try:
        ex = journal.get(key)
    except JournalError as exc:
        _fail(exc.message)
    if ex is None:
        what = "the journal is empty" if key == "last" else f"no exchange {key!r} in the journal"
        _fail(f"{what} ({journal.path}); `vapi-dev events` lists recorded exchanges.", 2)
    return ex


def _auth(secret: str | None, bearer: str | None, hmac_secret: str | None) -> AuthConfig:
    cfg = AuthConfig(secret=secret, bearer=bearer, hmac_secret=hmac_secret)
    try:
        cfg.validate()
    except AuthConfigError as exc:
        _fail(exc.message, 2)
    return cfg


def _base_url(to: str) -> str:
    """Accept a port ("3000"), host:port or a URL."""
    if to.isdigit():
        return f"http://127.0.0.1:{to}"
    return to if "://" in to else f"http://{to}"


def target_url(to: str, path: str, query: str) -> str:
    """``to`` with a path is used exactly; a bare ``to`` keeps the recorded path and query."""
    base = _base_url(to)
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        _fail(f"{to!r} is not an http(s) URL or port; pass --to http://127.0.0.1:3000/webhook.", 2)
    if parts.path not in ("", "/"):
        return base
    return base.rstrip("/") + (path or "/") + (f"?{query}" if query else "")


async def _send_async(method: str, url: str, headers: Headers, body: bytes, timeout: float) -> Reply:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.request(method, url, headers=headers, data=body, allow_redirects=False,
                        skip_auto_headers=("Content-Type",)) as resp,
    ):
        data = await resp.read()
        return Reply(resp.status, list(resp.headers.items()), data, (time.monotonic() - started) * 1000)


def send(req: Request, url: str, auth: AuthConfig, timeout: float, hint: str) -> Reply:
    """Send one request, re-signed; every failure becomes one sentence and exit 1."""
    signed = sign(auth, method=req.method, url=url, body=req.body) if auth.enabled else []
    headers = resend_headers(req.headers, MASK, drop=[k for k, _ in signed]) + signed
    try:
        return asyncio.run(_send_async(req.method, url, headers, req.body, timeout))
    except aiohttp.ClientConnectorError:
        _fail(f"nothing is listening on {url}{hint}")
    except asyncio.TimeoutError:
        _fail(f"no reply from {url} within {timeout:g} s; is the app stuck? (--timeout sets the limit)")
    except aiohttp.ClientError as exc:
        _fail(f"the request to {url} failed ({exc.__class__.__name__}: {exc}).")


def _text(body: bytes, show_secrets: bool = True) -> str:
    """Pretty JSON when the body is JSON, else the text (undecodable bytes replaced)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")
    return json.dumps(obj if show_secrets else redact_payload(obj), indent=2, ensure_ascii=False)


def _print_body(console: Console, body: bytes, show_secrets: bool = False) -> None:
    text = _text(body, show_secrets)
    if not text:
        console.print("  (empty)", style="dim")
    elif console.is_terminal and not console.no_color and text.lstrip()[:1] in "{[":
        console.print(Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True))
    else:
        console.print(text, markup=False)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def _summary(ex: Exchange) -> dict[str, Any]:
    return {
        "id": ex.id, "received_at": ex.received_at, "method": ex.method, "path": ex.target,
        "message_type": ex.message_type, "call_id": ex.call_id, "status": ex.status,
        "duration_ms": ex.duration_ms, "error": ex.error, "fallback": ex.fallback,
        "problems": [p.to_json() for p in ex.problems],
    }


# -- events / show ----------------------------------------------------------------------------------


def events(
    call: Annotated[str | None, typer.Option("--call", help="Only this call id.")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this message type.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many (newest).")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    journal: JournalOpt = None,
) -> None:
    """List recorded exchanges, newest last."""
    j = _open(journal)
    try:
        rows = j.recent(limit, call_id=call, type=type_)
    except JournalError as exc:
        _fail(exc.message)
    if json_out:
        for ex in rows:
            sys.stdout.write(json.dumps(_summary(ex)) + "\n")
        return
    console = _console()
    if not rows:
        console.print("no exchanges recorded" + (" for that filter" if call or type_ else " yet"))
        return
    cells = []
    for ex in rows:
        status = str(ex.status) if ex.status is not None else (ex.error_kind or "error")
        bad = ex.error or (ex.status or 0) >= 400 or any(p.level == "error" for p in ex.problems)
        cells.append(([ex.id, time.strftime("%H:%M:%S", time.localtime(ex.received_at)),
                       ex.message_type or f"{ex.method} {ex.target}", ex.call_id or "", status,
                       _ms(ex.duration_ms), summarize(ex)], "red" if bad else ""))
    table = Table(box=None, pad_edge=False)
    for i, col in enumerate(("id", "time", "type", "call", "status", "took")):
        # Fixed columns keep their width; only the summary wraps on a narrow terminal.
        width = max(len(col), *(len(r[i]) for r, _ in cells))
        table.add_column(col, no_wrap=True, min_width=width)
    table.add_column("summary", overflow="fold")
    for row, style in cells:
        table.add_row(*row, style=style)
    console.print(table)


def show(
    key: Annotated[str, typer.Argument(metavar="ID|last", help="Exchange id, row number or 'last'.")],
    journal: JournalOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    show_secrets: Annotated[bool, typer.Option(
        "--show-secrets", help="Do not mask credential-like fields in bodies.")] = False,
) -> None:
    """Show one exchange in full: request, reply, headers, timings and problems."""
    ex = _get(_open(journal), key)
    if json_out:
        data = _summary(ex) | {
            "query": ex.query, "headers": ex.headers, "forward_url": ex.forward_url,
            "request": json.loads(_text(ex.body, show_secrets)) if ex.payload is not None else _text(ex.body),
            "response_headers": ex.response_headers, "response": _text(ex.response_body),
            "auth": ex.auth.to_json() if ex.auth else None, "error_kind": ex.error_kind,
        }
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    c = _console()
    info = type_info(ex.message_type)
    c.print(f"[bold]{ex.id}[/]  {ex.method} {ex.target}  {ex.message_type or 'plain HTTP'}"
            f"{'  (Vapi waits for the reply)' if ex.reply_needed else ''}")
    c.print(f"received {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ex.received_at))}"
            f"  call {ex.call_id or '—'}  → {ex.forward_url or '—'}", markup=False)
    first = None if ex.first_byte is None else ex.first_byte * 1000
    c.print(f"status {ex.status if ex.status is not None else '—'}  first byte {_ms(first)}"
            f"  total {_ms(ex.duration_ms)}  deadline {info.deadline_s or ex.deadline_s:g} s"
            f"{'  (vapi-dev fallback reply)' if ex.fallback else ''}", markup=False)
    if ex.error:
        c.print(f"error ({ex.error_kind or 'unknown'}): {ex.error}", style="red", markup=False)
    if ex.auth:
        c.print(f"auth {ex.auth.method}: {'ok' if ex.auth.ok else 'FAILED ' + ex.auth.reason}", markup=False)
    for title, headers, body, secrets in (("request", ex.headers, ex.body, show_secrets),
                                          ("reply", ex.response_headers, ex.response_body, True)):
        c.rule(title)
        for k, v in redact_headers(headers):
            c.print(f"{k}: {v}", style="dim", markup=False)
        _print_body(c, body, secrets)
    if ex.problems:
        c.rule("problems")
        for p in ex.problems:
            c.print(f"{p.level}: {p.message} [{p.code}]", style="red" if p.level == "error" else "yellow",
                    markup=False)


# -- replay -----------------------------------------------------------------------------------------


def _edit(body: bytes) -> bytes:
    """Open $VISUAL/$EDITOR on the body; an unchanged edit keeps the recorded bytes exactly."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    original = _text(body)
    fd, name = tempfile.mkstemp(suffix=".json", prefix="vapi-dev-replay-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(original + "\n")
        try:
            rc = subprocess.run([*shlex.split(editor), name], check=False).returncode
        except OSError as exc:
            _fail(f"cannot start the editor {editor!r} ({exc.strerror}); set $EDITOR.")
        if rc != 0:
            _fail(f"the editor exited with status {rc}; nothing was sent.")
        edited = Path(name).read_text(encoding="utf-8")
    finally:
        os.unlink(name)
    if not edited.strip():
        _fail("the edited body is empty; nothing was sent.")
    if edited.strip() == original.strip():
        Console(stderr=True).print("body unchanged; sending the recorded bytes.")
        return body
    return edited.rstrip("\n").encode()


def _diff(old: bytes, new: bytes) -> list[str]:
    return list(difflib.unified_diff(_text(old).splitlines(), _text(new).splitlines(),
                                     "recorded reply", "new reply", lineterm="", n=2))


def replay(
    key: Annotated[str, typer.Argument(metavar="ID|last", help="Exchange id, row number or 'last'.")],
    to: Annotated[str | None, typer.Option("--to", help="Send here instead of the recorded target.")] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the body in $EDITOR first.")] = False,
    journal: JournalOpt = None,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Send a recorded request to the app again and compare the replies."""
    auth = _auth(secret, bearer, hmac_secret)
    ex = _get(_open(journal), key)
    if to:
        url = target_url(to, ex.path, ex.query)
    elif ex.forward_url:
        url = ex.forward_url
    else:
        _fail(f"{ex.id} was not forwarded anywhere; pass --to URL.", 2)
    body = _edit(ex.body) if edit else ex.body
    req = Request(ex.method, ex.path, ex.query, ex.headers, body, ex.message_type or "")
    reply = send(req, url, auth, timeout, " — is the app running? (or pass --to)")
    new = dataclasses.replace(
        ex, body=body, payload=_json_or_none(body), forward_url=url, status=reply.status,
        response_headers=reply.headers, response_body=reply.body, response_bytes=len(reply.body),
        response_truncated=False, streamed=False, first_byte=None, finished=ex.started + reply.ms / 1000,
        error=None, error_kind=None, fallback=False, problems=[],
    )
    new.problems = check_reply(new)
    c = _console()
    c.print(f"replayed {ex.id} ({ex.message_type or 'plain HTTP'}) → {url}", markup=False)
    table = Table(box=None, pad_edge=False)
    for col in ("", "recorded", "now"):
        table.add_column(col)
    old_status = str(ex.status) if ex.status is not None else (ex.error_kind or "error")
    table.add_row("status", old_status, str(reply.status))
    table.add_row("latency", _ms(ex.duration_ms), _ms(reply.ms))
    table.add_row("bytes", str(ex.response_bytes), str(len(reply.body)))
    c.print(table)
    lines = _diff(ex.response_body, reply.body)
    if not lines:
        c.print("reply body: identical")
    else:
        c.rule("reply body diff")
        for line in lines:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            c.print(line, style=style, markup=False, highlight=False)
    if new.problems:
        c.rule("problems")
        for p in new.problems:
            c.print(f"{p.level}: {p.message} [{p.code}]", style="red" if p.level == "error" else "yellow",
                    markup=False)
    elif ex.message_type:
        c.print("reply contract: ok")


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


# -- trigger ----------------------------------------------------------------------------------------


def _list_types(console: Console) -> None:
    table = Table(box=None, pad_edge=False)
    for col in ("type", "Vapi waits for a reply", "what"):
        table.add_column(col)
    for name in SAMPLE_TYPES:
        info = MESSAGE_TYPES[name]
        wait = f"yes ({info.deadline_s or 20:g} s)" if info.reply_needed else "no"
        table.add_row(name, wait, info.description)
    table.add_row("call", "", "a whole call in order, one call id")
    console.print(table)


def _with_sets(req: Request, sets: list[str]) -> Request:
    if not sets:
        return req
    payload = _json_or_none(req.body)
    if payload is None:
        _fail("--set needs a JSON body, but this request's body is not JSON.", 2)
    for expr in sets:
        apply_set(payload, expr)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return dataclasses.replace(req, body=body)


def trigger(
    type_: Annotated[str | None, typer.Argument(metavar="TYPE", help="Message type, or 'call'.")] = None,
    to: Annotated[str, typer.Option("--to", help="Where to send (the running listener).")] = DEFAULT_TRIGGER_URL,
    sets: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE (JSON or text); repeatable.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Send a payload or an export fixture.")] = None,
    call_id: Annotated[str | None, typer.Option("--call-id", help="Call id to use.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the message types.")] = False,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Send a realistic sample of a Vapi server message (or a whole call) and show the reply."""
    c = _console()
    if list_:
        _list_types(c)
        return
    auth = _auth(secret, bearer, hmac_secret)
    try:
        if file is not None:
            try:
                raw = file.read_bytes()
            except OSError as exc:
                _fail(f"cannot read {file} ({exc.strerror}).", 2)
            reqs = load_requests(raw, str(file))
        elif type_ is None:
            _fail("give a message type (or `call`, or --file F); `vapi-dev trigger --list` shows them.", 2)
        elif type_ == "call":
            reqs = [payload_request(p) for p in call_sequence(call_id)]
        else:
            reqs = [payload_request(sample(type_, call_id))]
        reqs = [_with_sets(r, sets or []) for r in reqs]
    except SampleError as exc:
        _fail(exc.message, 2)
    hint = " — start `vapi-dev listen` first, or pass --to" if to == DEFAULT_TRIGGER_URL else \
        " — is it running? (or pass --to)"
    for req in reqs:
        url = target_url(to, req.path, req.query)
        reply = send(req, url, auth, timeout, hint)
        style = "green" if 200 <= reply.status < 300 else "red"
        c.print(f"→ {req.label or req.method + ' ' + req.path}  [{style}]{reply.status}[/]  {_ms(reply.ms)}")
        if len(reqs) == 1:
            _print_body(c, reply.body, show_secrets=True)


# -- export -----------------------------------------------------------------------------------------


def export(
    call: Annotated[str, typer.Option("--call", help="The call id to export.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")] = None,
    journal: JournalOpt = None,
) -> None:
    """Write a call's exchanges as a JSON fixture that `trigger --file` can send again."""
    j = _open(journal)
    try:
        rows = j.by_call(call)
    except JournalError as exc:
        _fail(exc.message)
    if not rows:
        _fail(f"no exchanges of call {call!r} in the journal ({j.path}); `vapi-dev events` lists calls.", 2)
    text = json.dumps(fixture(call, rows), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output} ({exc.strerror}).")
    Console(stderr=True).print(f"wrote {len(rows)} exchanges of call {call} to {output}", markup=False)


def register(app: typer.Typer) -> None:
    """Add events, show, replay, trigger and export to the main app."""
    app.command("events")(events)
    app.command("show")(show)
    app.command("replay")(replay)
    app.command("trigger")(trigger)
    app.command("export")(export)
