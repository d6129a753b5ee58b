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
    send,
    stdout_console,
    target_url,
)
from vapi_dev.errors import ExitStatus

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.journal.fixtures import Request

# What the command needs beyond this is imported in its body, so `--help` stays light (see cli/common.py).


def _list_types(console: Console) -> None:
    from rich.table import Table

    from vapi_dev.vapi.messages import MESSAGE_TYPES
    from vapi_dev.vapi.samples import SAMPLE_TYPES

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


def _default_target() -> tuple[str, str]:
    """The running listener's URL (the newest, said so when there are several), else the default port."""
    from vapi_dev.cli.running import running_listeners

    found = running_listeners()
    if not found:
        return DEFAULT_TRIGGER_URL, " — no listener is running: start `vapi-dev listen` first, or pass --to"
    if len(found) > 1:
        others = ", ".join(r.url for r in found[1:])
        typer.echo(
            f"{len(found)} listeners are running; sending to the newest, {found[0].url} (others: {others}; "
            "pick one with --to)",
            err=True,
        )
    return found[0].url, " — is the listener still running? (or pass --to)"


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
    sets: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE (JSON or text); repeatable.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Send a payload or an export fixture.")] = None,
    call_id: Annotated[str | None, typer.Option("--call-id", help="Call id to use.")] = None,
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
) -> None:
    """Send a realistic sample of a Vapi server message (or a whole call) and show the reply."""
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
    elif type_ is None:
        fail("give a message type (or `call`, or --file F); `vapi-dev trigger --list` shows them.", ExitStatus.USAGE)
    elif type_ == "call":
        reqs = [payload_request(p) for p in call_sequence(call_id, args_as_string=args_as_string)]
    else:
        reqs = [payload_request(sample(type_, call_id, args_as_string=args_as_string))]
    reqs = [_with_sets(r, sets or []) for r in reqs]
    if to is None:
        to, hint = _default_target()
    else:
        hint = " — is it running? (or pass --to)"
    for req in reqs:
        url = target_url(to, req.path, req.query)
        reply = send(req, url, auth, timeout, hint)
        style = "green" if 200 <= reply.status < 300 else "red"
        line = Text(f"→ {printable(mask.text(req.label or req.method + ' ' + req.path))}  ")
        line.append(str(reply.status), style=style)
        line.append(f"  {format_ms(reply.ms)}")
        c.print(line)
        if len(reqs) == 1:
            print_body(c, reply.body, mask)
