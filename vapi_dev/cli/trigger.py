"""`vapi-dev trigger`: realistic sample events, whole calls and fixtures sent to the listener."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vapi_dev.cli.common import (
    DEFAULT_TRIGGER_URL,
    BearerFileOpt,
    BearerOpt,
    HmacFileOpt,
    HmacOpt,
    SecretFileOpt,
    SecretOpt,
    TimeoutOpt,
    auth_config,
    fail,
    format_ms,
    masker,
    print_body,
    stdout_console,
)
from vapi_dev.errors import ExitStatus
from vapi_dev.resend import exchange_of, send, target_url

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.exchange import Exchange
    from vapi_dev.journal.fixtures import Request
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig

# What the command needs beyond this is imported in its body, so `--help` stays light (see cli/common.py).

REPLY_LINES_SHOWN = 40  # lines of a reply body printed without -v
# The option that signs again each header Vapi's credentials send (the fixture kept them masked).
_SIGNED_BY = {"x-vapi-secret": "--secret", "authorization": "--bearer"}
_OPTION_OF = {"secret": "--secret", "bearer": "--bearer", "hmac": "--hmac-secret"}


def _list_types(console: Console) -> None:
    from rich.table import Table

    from vapi_dev.vapi.messages import MESSAGE_TYPES
    from vapi_dev.vapi.samples import SAMPLE_TYPES

    table = Table(box=None, pad_edge=False)
    names = [*SAMPLE_TYPES, "call"]
    # A type name is what the user types next: never wrapped nor cut; the other columns wrap instead.
    table.add_column("type", no_wrap=True, min_width=max(map(len, names)))
    table.add_column("Vapi waits", min_width=6)
    table.add_column("what", overflow="fold", ratio=1)
    for name in SAMPLE_TYPES:
        info = MESSAGE_TYPES[name]
        wait = f"yes ({info.deadline_s or 20:g} s)" if info.reply_needed else "no"
        table.add_row(name, wait, info.description)
    table.add_row("call", "", "a whole call in order, one call id")
    console.print(table)


def _with_sets(req: Request, sets: list[str]) -> Request:
    import dataclasses
    import json

    from vapi_dev.exchange import parse_json
    from vapi_dev.vapi.samples import apply_set

    if not sets:
        return req
    payload = parse_json(req.body)
    if payload is None:
        fail("--set needs a JSON body, but this request's body is not JSON.", ExitStatus.USAGE)
    for expr in sets:
        apply_set(payload, expr)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return dataclasses.replace(req, body=body)


def _check_masked(reqs: list[Request], auth: AuthConfig, source: str) -> None:
    """Say in one line that a fixture's credentials were masked; refuse to send it unsigned (it would 401)."""
    from vapi_dev.journal.fixtures import masked_headers
    from vapi_dev.redact import MASK

    masked = masked_headers(reqs, MASK)
    if not masked:
        return
    names = ", ".join(masked)
    if auth.enabled:
        given = ", ".join(_OPTION_OF[m] for m in auth.methods)
        typer.echo(f"{source}: its {names} header(s) were masked on export; signing again with {given}.", err=True)
        return
    wanted = sorted({_SIGNED_BY.get(n.lower(), "--hmac-secret") for n in masked})
    fail(
        f"{source}: its {names} header(s) were masked on export, so sent as it is it would fail authentication;"
        f" give the credential to sign it again ({' or '.join(wanted)}, or their -file forms).",
        ExitStatus.USAGE,
    )


def _verdict(console: Console, ex: Exchange, mask: Masker) -> bool:
    """Print the reply's contract problems as the stream shows them; True when the reply is acceptable:
    2xx and no error-level problem (warnings are shown, and pass)."""
    from vapi_dev.output.lines import detail_lines
    from vapi_dev.vapi.contracts import check_reply

    ex.problems = check_reply(ex)
    for text, style in detail_lines(ex, mask):
        console.print(f"  {text}", style=style, markup=False, highlight=False)
    ok = ex.status is not None and 200 <= ex.status < 300
    return ok and not any(p.level == "error" for p in ex.problems)


def _app_url(forwards_to: str | None, req: Request) -> str | None:
    """Where the listener sent ``req`` on to (its target with the path appended), when it said."""
    if not forwards_to:
        return None
    from vapi_dev.config import TargetError, parse_target

    try:
        return parse_target(forwards_to).url_for(req.path, req.query)
    except TargetError:
        return None


def _default_target() -> tuple[str, str, str | None]:
    """The running listener's URL (the newest, said so when there are several), else the default port; and
    where that listener forwards to, if known (its checks speak of the app, not of the listener)."""
    from vapi_dev.cli.running import running_listeners

    found = running_listeners()
    if not found:
        return DEFAULT_TRIGGER_URL, " — no listener is running: start `vapi-dev listen` first, or pass --to", None
    if len(found) > 1:
        others = ", ".join(r.url for r in found[1:])
        typer.echo(
            f"{len(found)} listeners are running; sending to the newest, {found[0].url} (others: {others}; "
            "pick one with --to)",
            err=True,
        )
    return found[0].url, " — is the listener still running? (or pass --to)", found[0].forward_to


def trigger(
    type_: Annotated[str | None, typer.Argument(metavar="TYPE", help="Message type, or 'call'.")] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            envvar="VAPI_DEV_TRIGGER_URL",
            metavar="URL",
            help=f"Where to send: a URL or port (default: the running listener, else {DEFAULT_TRIGGER_URL}).",
            show_default=False,
        ),
    ] = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", metavar="PATH=VALUE", help="PATH=VALUE (JSON or text); repeatable.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", metavar="FILE", help="Send a payload or an export fixture.")
    ] = None,
    call_id: Annotated[str | None, typer.Option("--call-id", metavar="CALL_ID", help="Call id to use.")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List the message types.")] = False,
    args_as_string: Annotated[
        bool,
        typer.Option(
            "--args-as-string",
            help="Send tool-call arguments as a JSON string, as Vapi's Python SDK types them (default: an "
            "object, as Vapi's guides and real traffic send them).",
        ),
    ] = False,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    secret_file: SecretFileOpt = None,
    bearer_file: BearerFileOpt = None,
    hmac_secret_file: HmacFileOpt = None,
    timeout: TimeoutOpt = 30.0,
    no_check: Annotated[
        bool,
        typer.Option(
            "--no-check",
            help="Only send: skip the reply-contract checks and exit 0 whatever the reply (1 only when it could "
            "not be sent).",
        ),
    ] = False,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help=f"Print the whole reply (default: its first {REPLY_LINES_SHOWN} lines)."),
    ] = False,
) -> None:
    """Send a realistic sample of a Vapi server message (or a whole call), show the reply and check it like
    the stream does: exit 1 when a reply is not 2xx or breaks its message's reply contract."""
    from rich.text import Text

    from vapi_dev.journal.fixtures import load_requests, payload_request
    from vapi_dev.output.lines import printable
    from vapi_dev.vapi.samples import call_sequence, sample

    c = stdout_console()
    if list_:
        _list_types(c)
        return
    auth = auth_config(secret, bearer, hmac_secret, (secret_file, bearer_file, hmac_secret_file))
    mask = masker(auth)
    if file is not None:
        try:
            raw = file.read_bytes()
        except OSError as exc:
            fail(f"cannot read {file} ({exc.strerror}).", ExitStatus.USAGE)
        reqs = load_requests(raw, str(file))
        _check_masked(reqs, auth, str(file))
    elif type_ is None:
        fail("give a message type (or `call`, or --file F); `vapi-dev trigger --list` shows them.", ExitStatus.USAGE)
    elif type_ == "call":
        reqs = [payload_request(p) for p in call_sequence(call_id, args_as_string=args_as_string)]
    else:
        reqs = [payload_request(sample(type_, call_id, args_as_string=args_as_string))]
    reqs = [_with_sets(r, sets or []) for r in reqs]
    forwards_to: str | None = None
    if to is None:
        to, hint, forwards_to = _default_target()
    else:
        hint = " — is it running? (or pass --to)"
    failed = 0
    for req in reqs:
        url = target_url(to, req.path, req.query)
        reply = send(req, url, auth, timeout, hint, mask=mask)
        style = "green" if 200 <= reply.status < 300 else "red"
        line = Text(f"→ {printable(mask.text(req.label or req.method + ' ' + req.path))}  ")
        line.append(str(reply.status), style=style)
        line.append(f"  {format_ms(reply.ms)}")
        c.print(line)
        app_url = _app_url(forwards_to, req) or url  # what a redirect problem should point at
        if not no_check and not _verdict(c, exchange_of(req, app_url, reply), mask):
            failed += 1
        if len(reqs) == 1:
            print_body(c, reply.body, mask, max_lines=None if verbose else REPLY_LINES_SHOWN)
    if failed:
        what = "the reply" if len(reqs) == 1 else f"{failed} of {len(reqs)} replies"
        fail(f"{what} failed the checks above (--no-check only sends).")
