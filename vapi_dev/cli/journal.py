"""The journal commands: events, show, replay and export (registered by cli.py, with trigger)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from vapi_dev.cli import trigger as cli_trigger
from vapi_dev.cli.common import (
    BearerFileOpt,
    BearerOpt,
    HmacFileOpt,
    HmacOpt,
    JournalOpt,
    SecretFileOpt,
    SecretOpt,
    TimeoutOpt,
    auth_config,
    fail,
    format_ms,
    get_exchange,
    guarded,
    masker,
    open_journal,
    print_body,
    stdout_console,
)
from vapi_dev.errors import ExitStatus
from vapi_dev.output.bodies import body_text
from vapi_dev.resend import replayed, send, target_url

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.exchange import Exchange
    from vapi_dev.journal.store import Journal
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig

# What the commands need beyond this is imported in their bodies, so `--help` stays light (see cli/common.py).


MATCHES_SHOWN = 10  # ids listed when a prefix matches more than one
REPLY_LINES = 40  # lines of a new reply (or its diff) replay prints without -v
NARROW = 80  # columns events fits in without --wide
WIDE_PIPED = 1000  # columns of events --wide when piped: a row is one line
TYPE_SHOWN = 20  # characters of a message type in the narrow table (all but the longest types whole)


def _ambiguous(what: str, key: str, found: list[str]) -> NoReturn:
    from vapi_dev.output.lines import printable

    shown = ", ".join(printable(f) for f in found[:MATCHES_SHOWN])
    more = " and more" if len(found) > MATCHES_SHOWN else ""
    fail(
        f"{what} {printable(key)!r} is the start of more than one: {shown}{more}; give more of it.",
        ExitStatus.USAGE,
    )


def _lookup(j: Journal, key: str) -> Exchange:
    """The exchange ``key``: 'last', a row number, an id or the unique start of one (ambiguous: exit 2)."""
    if key != "last" and not key.isdigit():
        ids = j.ids_with_prefix(key, MATCHES_SHOWN + 1)
        if len(ids) > 1:
            _ambiguous("exchange id", key, ids)
        key = ids[0] if ids else key
    return get_exchange(j, key)


def _call(j: Journal, call: str) -> str:
    """The call id ``call`` is the unique start of (itself when none starts so; ambiguous: exit 2)."""
    calls = j.calls_with_prefix(call, MATCHES_SHOWN + 1)
    if len(calls) > 1:
        _ambiguous("call id", call, calls)
    return calls[0] if calls else call


def _cell(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def events(
    call: Annotated[str | None, typer.Option("--call", help="Only this call id (or the unique start of one).")] = None,
    type_: Annotated[str | None, typer.Option("--type", help="Only this message type.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many (newest).")] = 50,
    wide: Annotated[bool, typer.Option("--wide", help="Every column, whole call ids and types.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    journal: JournalOpt = None,
) -> None:
    """List recorded exchanges, newest last (one row each, in 80 columns unless --wide)."""
    import json
    import time

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from vapi_dev.output.lines import human_bytes, printable, short_call
    from vapi_dev.output.ndjson import exchange_record
    from vapi_dev.vapi.summary import summarize

    mask = masker()
    j = open_journal(journal)
    if call:
        call = _call(j, call)
    rows = j.recent(limit, call_id=call, type=type_, masked=True)  # listen's secret values masked as it stored them
    if json_out:
        for ex in rows:
            sys.stdout.write(json.dumps(exchange_record(ex, mask=mask), ensure_ascii=False, default=str) + "\n")
        return
    console = stdout_console()
    if not sys.stdout.isatty() and not os.environ.get("COLUMNS"):
        # Piped: the rows a terminal of 80 columns shows, or with --wide every column on one line each.
        console = Console(highlight=False, width=WIDE_PIPED if wide else NARROW)
    if not rows:
        console.print("no exchanges recorded" + (" for that filter" if call or type_ else " yet"))
        return
    cols: tuple[str, ...] = ("id", "time", "call", "type", "status", "took")
    if wide:
        cols = (*cols, "request", "bytes", "auth")
    cells = []
    for ex in rows:
        status = str(ex.status) if ex.status is not None else (ex.error_kind or "error")
        bad = ex.error or (ex.status or 0) >= 400 or any(p.level == "error" for p in ex.problems)
        mtype = printable(ex.message_type or mask.text(f"{ex.method} {ex.target}"))
        row = [
            printable(ex.id),
            time.strftime("%H:%M:%S", time.localtime(ex.received_at)),
            printable(ex.call_id or "") if wide else printable(short_call(ex.call_id)),
            mtype if wide else _cell(mtype, TYPE_SHOWN),
            printable(status),
            format_ms(ex.duration_ms),
        ]
        if wide:
            row += [
                printable(mask.text(f"{ex.method} {ex.target}")),
                f"{human_bytes(ex.request_bytes)}→{human_bytes(ex.response_bytes)}",
                "—" if ex.auth is None else ("ok" if ex.auth.ok else "failed"),
            ]
        cells.append((row, printable(summarize(ex, mask)), "red" if bad else ""))
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 0))  # one space between columns
    for i, col in enumerate(cols):
        # Fixed columns keep their width; only the summary gives way on a narrow terminal.
        width = max(len(col), *(len(r[i]) for r, _, _ in cells))
        table.add_column(col, no_wrap=True, min_width=width)
    table.add_column("summary", overflow="fold" if wide else "ellipsis", no_wrap=not wide)
    for row, summary, style in cells:
        table.add_row(*(Text(cell) for cell in (*row, summary)), style=style)  # Text: data is never read as markup
    console.print(table)


def show(
    key: Annotated[
        str, typer.Argument(metavar="ID|last", help="Exchange id (or its unique start), row number or 'last'.")
    ],
    journal: JournalOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    request_only: Annotated[bool, typer.Option("--request", help="Only the request (headers and body).")] = False,
    reply_only: Annotated[bool, typer.Option("--reply", help="Only the reply (status, headers and body).")] = False,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Do not mask credential-like fields, secret parameters and values."),
    ] = False,
) -> None:
    """Show one exchange: what happened, its problems, the reply, then the request (long ones through $PAGER)."""
    import json

    from vapi_dev.output.ndjson import exchange_record

    if request_only and reply_only:
        fail("give --request or --reply, not both (without either, both are shown).", ExitStatus.USAGE)
    mask = masker(show_secrets=show_secrets)
    j = open_journal(journal)
    j.masked = not show_secrets  # the copies with listen's secret values masked, unless asked for the raw ones
    ex = _lookup(j, key)
    if json_out:
        data = exchange_record(ex, mask=mask) | {
            "headers": mask.headers(ex.headers),
            "request": mask.body(ex.body)[0],  # JSON as data, else text
            "response_headers": mask.headers(ex.response_headers),
            "response": body_text(ex.response_body, mask),
        }
        try:
            text = json.dumps(data, indent=2, ensure_ascii=False)
        except (RecursionError, ValueError):  # a request nested too deeply for json: its text instead
            text = json.dumps(data | {"request": body_text(ex.body, mask)}, indent=2, ensure_ascii=False)
        sys.stdout.write(text + "\n")
        return
    sides = ("request",) if request_only else ("reply",) if reply_only else ("reply", "request")
    c = stdout_console()
    bodies = {"request": ex.body, "reply": ex.response_body}
    lines = sum(body_text(bodies[side], mask).count("\n") + 1 for side in sides)
    if sys.stdout.isatty() and lines + 12 > c.height:  # a terminal, and more than fits on it: page
        with c.pager(styles=True):
            _show_text(c, ex, mask, sides)
    else:
        _show_text(c, ex, mask, sides)


def _show_text(c: Console, ex: Exchange, mask: Masker, sides: tuple[str, ...]) -> None:
    """What ``show`` prints: the header lines and problems, then each of ``sides``."""
    import time

    from rich.text import Text

    from vapi_dev.output.lines import printable
    from vapi_dev.vapi.messages import type_info

    info = type_info(ex.message_type)
    head = Text(printable(ex.id), style="bold")
    head.append(f"  {printable(ex.method)} {printable(mask.text(ex.target))}")
    head.append(f"  {printable(ex.message_type or 'plain HTTP')}")
    head.append("  (Vapi waits for the reply)" if ex.reply_needed else "")
    c.print(head)
    c.print(
        f"received {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ex.received_at))}"
        f"  call {printable(ex.call_id or '—')}  → {printable(mask.text(ex.forward_url) or '—', None)}",
        markup=False,
    )
    first = None if ex.first_byte is None else ex.first_byte * 1000
    c.print(
        f"status {ex.status if ex.status is not None else '—'}  first byte {format_ms(first)}"
        f"  total {format_ms(ex.duration_ms)}  deadline {info.deadline_s or ex.deadline_s:g} s"
        f"{'  (vapi-dev fallback reply)' if ex.fallback else ''}",
        markup=False,
    )
    if ex.error:
        c.print(
            f"error ({ex.error_kind or 'unknown'}): {printable(mask.text(ex.error), None)}", style="red", markup=False
        )
    if ex.auth:
        verdict = "ok" if ex.auth.ok else "FAILED " + printable(mask.text(ex.auth.reason), None)
        c.print(f"auth {ex.auth.method}: {verdict}", markup=False)
    if ex.problems:
        c.rule("problems")
        for p in ex.problems:
            line = f"{p.level}: {printable(mask.text(p.message), None)} [{p.code}]"
            c.print(line, style="red" if p.level == "error" else "yellow", markup=False)
    parts = {
        "request": (ex.headers, ex.body, ex.request_truncated, ex.request_bytes),
        "reply": (ex.response_headers, ex.response_body, ex.response_truncated, ex.response_bytes),
    }
    for title in sides:
        headers, body, truncated, size = parts[title]
        c.rule(title if title == "request" else f"reply {ex.status if ex.status is not None else '—'}")
        for k, v in mask.headers(headers):
            c.print(f"{printable(k)}: {printable(v, None)}", style="dim", markup=False)
        if truncated:
            c.print(f"body: {_cut_note(len(body), size)}", style="yellow", markup=False)
        print_body(c, body, mask)


def _cut_note(kept: int, size: int) -> str:
    """What is left of a body kept only in part (journal cut, streamed relay): "first 1.0 MB of 200.0 MB kept"."""
    from vapi_dev.output.lines import human_bytes

    if size > kept:
        return f"first {human_bytes(kept)} of {human_bytes(size)} kept"
    return f"first {human_bytes(kept)} kept, the rest was cut"


# -- replay -----------------------------------------------------------------------------------------


def _edit(body: bytes, cut: bool = False) -> bytes:
    """Open $VISUAL/$EDITOR on the body; an unchanged edit keeps the recorded bytes exactly (refused when
    ``cut``: the recorded bytes are only the body's first part)."""
    from rich.console import Console

    from vapi_dev.output.bodies import edit_body

    edited = edit_body(body)  # an EditError is reported by `guarded`
    if edited is not None:
        return edited
    if cut:
        fail("the body is unchanged, and it is only the first part of the recorded one; nothing was sent.")
    Console(stderr=True).print("body unchanged; sending the recorded bytes.")
    return body


def _read_body(file: Path) -> bytes:
    try:
        return sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        fail(f"cannot read --body-file {file} ({exc.strerror}).", ExitStatus.USAGE)


def replay(
    key: Annotated[str, typer.Argument(metavar="ID|last", help="Exchange id, row number or 'last'.")],
    to: Annotated[str | None, typer.Option("--to", help="Send here instead of the recorded target.")] = None,
    edit: Annotated[bool, typer.Option("--edit", help="Edit the body in $EDITOR first.")] = False,
    body_file: Annotated[
        Path | None,
        typer.Option(
            "--body-file",
            metavar="FILE",
            help="Send this body (- for standard input) instead of the recorded one; with --edit, edit it first.",
            show_default=False,
        ),
    ] = None,
    journal: JournalOpt = None,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    secret_file: SecretFileOpt = None,
    bearer_file: BearerFileOpt = None,
    hmac_secret_file: HmacFileOpt = None,
    timeout: TimeoutOpt = 30.0,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help=f"The whole new reply, not its first {REPLY_LINES} lines.")
    ] = False,
) -> None:
    """Send a recorded request to the app again and compare the replies; exit 1 when the new one fails."""

    from rich.table import Table

    from vapi_dev.journal.fixtures import Request
    from vapi_dev.output.lines import printable

    auth = auth_config(secret, bearer, hmac_secret, (secret_file, bearer_file, hmac_secret_file))
    mask = masker(auth)
    j = open_journal(journal)
    ex = _lookup(j, key)  # the raw row: the exact bytes are what is sent again
    shown = j.get(ex.id, masked=True) or ex  # the same row with listen's secret values masked, for display
    if ex.request_truncated and body_file is None and not edit:
        fail(
            f"the request body of {ex.id} was cut in the journal ({_cut_note(len(ex.body), ex.request_bytes)}),"
            " so it cannot be sent again as it was; give the body with --body-file FILE (or --edit it)."
        )
    if to:
        url = target_url(to, ex.path, ex.query)
    elif ex.forward_url:
        url = ex.forward_url
    else:
        fail(f"{ex.id} was not forwarded anywhere; pass --to URL.", ExitStatus.USAGE)
    resigned = _credentials_for(ex.id, j.masked_header_names(ex.id), auth)
    body = ex.body if body_file is None else _read_body(body_file)
    if edit:
        body = _edit(body, cut=ex.request_truncated and body_file is None)
    req = Request(ex.method, ex.path, ex.query, ex.headers, body, ex.message_type or "")
    reply = send(req, url, auth, timeout, " — is the app running? (or pass --to)", mask=mask)
    new = replayed(ex, body, url, reply)
    c = stdout_console()
    url_shown = target_url(to, shown.path, shown.query) if to else shown.forward_url
    c.print(
        f"replayed {printable(ex.id)} ({printable(ex.message_type or 'plain HTTP')}) → "
        f"{printable(mask.text(url_shown))}",
        markup=False,
    )
    table = Table(box=None, pad_edge=False)
    for col in ("", "recorded", "now"):
        table.add_column(col)
    old_status = str(ex.status) if ex.status is not None else (ex.error_kind or "error")
    table.add_row("status", old_status, str(reply.status))
    table.add_row("latency", format_ms(ex.duration_ms), format_ms(reply.ms))
    table.add_row("bytes", str(ex.response_bytes), str(len(reply.body)))
    c.print(table)
    if resigned:
        c.print(resigned, markup=False)
    from vapi_dev.output.bodies import reply_diff

    lines = [] if ex.response_body == reply.body else reply_diff(shown.response_body, reply.body, mask)
    if not lines:
        c.print("reply body: identical")
    else:
        c.rule("reply body diff")
        hidden = 0 if verbose else max(0, len(lines) - REPLY_LINES)
        for line in lines[: len(lines) - hidden]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            c.print(printable(line, None), style=style, markup=False, highlight=False)
        if hidden:
            c.print(f"… {hidden} more lines (-v shows them all)", style="dim", markup=False)
    if new.problems:
        c.rule("problems")
        for p in new.problems:
            line = f"{p.level}: {printable(mask.text(p.message), None)} [{p.code}]"
            c.print(line, style="red" if p.level == "error" else "yellow", markup=False)
    elif ex.message_type:
        c.print("reply contract: ok")
    if not 200 <= reply.status < 300:
        fail(f"the app answered {reply.status}, not 2xx.")
    if any(p.level == "error" for p in new.problems):
        fail("the new reply fails the reply contract (problems above).")


# Which option signs again a header the journal keeps masked (the names are lower-cased, see store._masked).
RESIGN_OPTION = {"x-vapi-secret": "--secret", "authorization": "--bearer", "x-signature": "--hmac-secret"}


def _credentials_for(ex_id: str, masked: list[str], auth: AuthConfig) -> str:
    """The line saying which masked headers are signed again (empty when none were masked); refuses (exit 1)
    when one that replay could sign is masked and its credential was not given: the app would answer 401."""
    from vapi_dev.output.lines import printable

    given = {"--secret": bool(auth.secret), "--bearer": bool(auth.bearer), "--hmac-secret": bool(auth.hmac_secret)}
    if not masked:
        return ""
    needed = sorted({RESIGN_OPTION[n] for n in masked if n in RESIGN_OPTION})
    missing = [o for o in needed if not given[o]]
    names = ", ".join(printable(n) for n in masked)
    if missing:
        fail(
            f"{ex_id} was recorded with {names} masked (the journal never keeps credentials), so it would be sent"
            f" without them; pass {' and '.join(missing)} (or {missing[0]}-file) to sign it again. Nothing was sent."
        )
    dropped = [printable(n) for n in masked if n not in RESIGN_OPTION]
    note = f"; {', '.join(dropped)} not sent" if dropped else ""
    signed = f"signed again with {' and '.join(needed)}" if needed else "not sent"
    return f"recorded with {names} masked: {signed}{note}."


def export(
    call: Annotated[str, typer.Option("--call", help="The call id to export (or the unique start of one).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here (default: stdout).")] = None,
    raw: Annotated[
        bool,
        typer.Option("--raw", help="Keep credential-like fields, secret parameters and values unmasked (a warning)."),
    ] = False,
    journal: JournalOpt = None,
) -> None:
    """Write a call's exchanges as a JSON fixture that `trigger --file` can send again (secrets masked)."""
    import json

    from rich.console import Console

    from vapi_dev.journal.fixtures import fixture

    err = Console(stderr=True, highlight=False)
    if raw:
        err.print(
            "warning: --raw keeps tokens, passwords and other secrets in the bodies and query strings of the"
            " export; keep the file private (secret headers stay masked: they are never recorded).",
            style="yellow",
            markup=False,
        )
    j = open_journal(journal)
    call = _call(j, call)
    rows = j.by_call(call, masked=not raw)
    if not rows:
        fail(
            f"no exchanges of call {call!r} in the journal ({j.path}); `vapi-dev events` lists calls.", ExitStatus.USAGE
        )
    try:
        text = json.dumps(fixture(call, rows, masker(show_secrets=raw)), indent=2, ensure_ascii=False) + "\n"
    except RecursionError:
        fail(f"an exchange of call {call!r} has a body nested too deeply to write as JSON.")
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {output} ({exc.strerror}).")
    err.print(f"wrote {len(rows)} exchanges of call {call} to {output}", markup=False)


def register(app: typer.Typer) -> None:
    """Add events, show, replay, trigger and export to the main app."""
    app.command("events")(guarded(events))
    app.command("show")(guarded(show))
    app.command("replay")(guarded(replay))
    app.command("trigger")(guarded(cli_trigger.trigger))
    app.command("export")(guarded(export))
