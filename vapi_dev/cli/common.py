"""Shared by the journal and trigger commands: options, opening the journal, sending a request."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, ParamSpec, TypeVar
from urllib.parse import urlsplit

import aiohttp
import typer
from rich.console import Console
from rich.syntax import Syntax
from rich.text import Text

from vapi_dev.errors import ExitStatus, VapiDevError
from vapi_dev.exchange import Exchange, Headers
from vapi_dev.journal.fixtures import Request, resend_headers
from vapi_dev.journal.store import Journal, default_journal_path
from vapi_dev.output.terminal import make_console
from vapi_dev.redact import MASK, redact_payload
from vapi_dev.vapi.auth import AuthConfig, sign

DEFAULT_TRIGGER_URL = "http://127.0.0.1:4242"

JournalOpt = Annotated[Path | None, typer.Option("--journal", help="Journal file (default: user data dir).")]
SecretOpt = Annotated[
    str | None,
    typer.Option("--secret", envvar="VAPI_DEV_SECRET", help="Send X-Vapi-Secret with this value.", show_default=False),
]
BearerOpt = Annotated[
    str | None,
    typer.Option("--bearer", envvar="VAPI_DEV_BEARER", help="Send Authorization: Bearer TOKEN.", show_default=False),
]
HmacOpt = Annotated[
    str | None,
    typer.Option(
        "--hmac-secret",
        envvar="VAPI_DEV_HMAC_SECRET",
        help="Sign like Vapi's HMAC credential (sha256).",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for each reply.")]

P = ParamSpec("P")
R = TypeVar("R")


@dataclasses.dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes
    ms: float


def report(message: str) -> None:
    """Print one clear ``error:`` line on stderr.

    The message is plain text (never rich markup), so paths or values with brackets print as they are.
    """
    line = Text("error: ", style="bold red")
    line.append(message)
    make_console(sys.stderr, None).print(line, soft_wrap=True)


def guarded(command: Callable[P, R]) -> Callable[P, R]:
    """The error boundary of every command: a VapiDevError becomes one ``error:`` line and its exit code.

    Applied where commands are registered, so a command behaves the same in whichever app it is.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except VapiDevError as e:
            report(e.message)
            raise typer.Exit(e.exit_status) from None

    return run


def fail(message: str, code: ExitStatus = ExitStatus.RUNTIME) -> NoReturn:
    """Report ``message`` and exit with ``code``, for failures the CLI itself finds (bad options, …).

    Errors raised below the CLI are VapiDevErrors; ``main`` reports them the same way.
    """
    report(message)
    raise typer.Exit(code)


def _console() -> Console:
    # Piped output: one row per line rather than wrapping at 80 columns.
    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=wide)


def _open(path: Path | None) -> Journal:
    return Journal(path or default_journal_path(), create=False)


def _get(journal: Journal, key: str) -> Exchange:
    ex = journal.get(key)
    if ex is None:
        what = "the journal is empty" if key == "last" else f"no exchange {key!r} in the journal"
        fail(f"{what} ({journal.path}); `vapi-dev events` lists recorded exchanges.", ExitStatus.USAGE)
    return ex


def _auth(secret: str | None, bearer: str | None, hmac_secret: str | None) -> AuthConfig:
    cfg = AuthConfig(secret=secret, bearer=bearer, hmac_secret=hmac_secret)
    cfg.validate()
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
        fail(f"{to!r} is not an http(s) URL or port; pass --to http://127.0.0.1:3000/webhook.", ExitStatus.USAGE)
    if parts.path not in ("", "/"):
        return base
    return base.rstrip("/") + (path or "/") + (f"?{query}" if query else "")


async def _send_async(method: str, url: str, headers: Headers, body: bytes, timeout: float) -> Reply:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
        session.request(
            method, url, headers=headers, data=body, allow_redirects=False, skip_auto_headers=("Content-Type",)
        ) as resp,
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
        fail(f"nothing is listening on {url}{hint}")
    except asyncio.TimeoutError:
        fail(f"no reply from {url} within {timeout:g} s; is the app stuck? (--timeout sets the limit)")
    except aiohttp.ClientError as exc:
        fail(f"the request to {url} failed ({exc.__class__.__name__}: {exc}).")


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


# -- events / show ----------------------------------------------------------------------------------


# -- trigger ----------------------------------------------------------------------------------------
