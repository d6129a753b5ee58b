"""The typer app: builds a Config, runs commands, and is the only place that prints fatal errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from vapi_dev import __version__, cli_journal, pipeline
from vapi_dev.auth import AuthConfig, AuthConfigError
from vapi_dev.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TARGET, Config, TargetError, parse_target
from vapi_dev.exchange import Notice
from vapi_dev.journal import Journal, JournalError, JournalSink, default_journal_path
from vapi_dev.receiver import ListenError
from vapi_dev.render import NdjsonSink, TerminalSink, make_console
from vapi_dev.session import Bus, Session

app = typer.Typer(
    name="vapi-dev",
    help="Develop against Vapi server URLs on your own machine: receive Vapi's events through a public "
    "tunnel, forward them to your local app byte for byte, relay its replies, and see every event live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

AUTH = "Authentication (mirrors Vapi's credential settings)"
EXIT_RUNTIME = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_RUNTIME) -> NoReturn:
    """Print one clear line on stderr and exit with ``code``."""
    err = make_console(sys.stderr, None)
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vapi-dev {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """vapi-dev: a local development companion for Vapi server URLs."""


def _types(value: list[str] | None) -> frozenset[str]:
    out: set[str] = set()
    for item in value or []:
        out.update(t.strip() for t in item.split(",") if t.strip())
    return frozenset(out)


@app.command()
def listen(
    target: Annotated[str | None, typer.Argument(
        help="Where your app listens: 3000, :3000, localhost:3000/webhook or a full http(s) URL. "
        f"Default {DEFAULT_TARGET}.", show_default=False)] = None,
    forward_to: Annotated[str | None, typer.Option(
        "--forward-to", "-f", help="Same as TARGET.", show_default=False)] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="Port of the local receiver (0 picks a free one).",
                                      min=0, max=65535)] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address the receiver binds to.")] = DEFAULT_HOST,
    timeout: Annotated[float | None, typer.Option(
        "--timeout", min=0.1, max=300,
        help="Deadline in seconds for every message type (default: 7.5 s for assistant-request, 20 s "
        "otherwise, like Vapi).", show_default=False)] = None,
    insecure: Annotated[bool, typer.Option(
        "--insecure", help="Skip TLS verification for an https target with a self-signed certificate.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show request and reply bodies.")] = False,
    full: Annotated[bool, typer.Option("--full", help="With -v: do not shorten long arrays and strings.")] = False,
    json_out: Annotated[bool, typer.Option(
        "--json", help="NDJSON on stdout (ready line, then one line per exchange); everything else on stderr.")
    ] = False,
    color: Annotated[str, typer.Option(
        "--color", help="auto, always or never (NO_COLOR and non-terminal output turn colour off in auto).")
    ] = "auto",
    events: Annotated[list[str] | None, typer.Option(
        "--events", help="Show only these message types (comma-separated or repeated). Never changes "
        "what is forwarded.", show_default=False)] = None,
    exclude: Annotated[list[str] | None, typer.Option(
        "--exclude", help="Hide these message types.", show_default=False)] = None,
    call: Annotated[str | None, typer.Option(
        "--call", help="Show only exchanges of this call id (a prefix is enough).", show_default=False)] = None,
    show_all: Annotated[bool, typer.Option(
        "--all", help="Show each chatty event (speech-update, partial transcripts, model-output, "
        "conversation-update) instead of one compact line.")] = False,
    tunnel: Annotated[str, typer.Option(
        "--tunnel", help="auto (ngrok when a token is known, else local only), ngrok, manual or none.")
    ] = "none",
    fallback: Annotated[bool, typer.Option(
        "--fallback", help="When your app is down or misses the deadline, answer Vapi with a valid, clearly "
        "marked error reply (tool-calls: every toolCallId with an error) so a live call degrades gracefully.")
    ] = False,
    show_secrets: Annotated[bool, typer.Option(
        "--show-secrets", help="Do not mask secrets, tokens and signatures in the output.")] = False,
    secret: Annotated[str | None, typer.Option(
        "--secret", envvar="VAPI_DEV_SECRET", help="Expected X-Vapi-Secret value.", rich_help_panel=AUTH,
        show_default=False)] = None,
    bearer: Annotated[str | None, typer.Option(
        "--bearer", envvar="VAPI_DEV_BEARER", help="Expected bearer token (Vapi bearer credential).",
        rich_help_panel=AUTH, show_default=False)] = None,
    auth_header: Annotated[str, typer.Option(
        "--auth-header", envvar="VAPI_DEV_AUTH_HEADER", help="Header carrying the bearer token.",
        rich_help_panel=AUTH)] = "Authorization",
    bearer_prefix: Annotated[bool, typer.Option(
        "--bearer-prefix/--no-bearer-prefix", envvar="VAPI_DEV_BEARER_PREFIX",
        help="Whether the token is preceded by 'Bearer '.", rich_help_panel=AUTH)] = True,
    hmac_secret: Annotated[str | None, typer.Option(
        "--hmac-secret", envvar="VAPI_DEV_HMAC_SECRET", help="HMAC credential secret key.",
        rich_help_panel=AUTH, show_default=False)] = None,
    hmac_alg: Annotated[str, typer.Option(
        "--hmac-alg", envvar="VAPI_DEV_HMAC_ALG", help="sha256, sha512 or sha1.", rich_help_panel=AUTH)
    ] = "sha256",
    hmac_header: Annotated[str, typer.Option(
        "--hmac-header", envvar="VAPI_DEV_HMAC_HEADER", help="Signature header name.", rich_help_panel=AUTH)
    ] = "x-signature",
    hmac_timestamp_header: Annotated[str, typer.Option(
        "--hmac-timestamp-header", envvar="VAPI_DEV_HMAC_TIMESTAMP_HEADER", help="Timestamp header name.",
        rich_help_panel=AUTH)] = "x-timestamp",
    hmac_format: Annotated[str, typer.Option(
        "--hmac-format", envvar="VAPI_DEV_HMAC_FORMAT",
        help="Signed payload: {timestamp}, {body}, {method} and {url} (the public URL).", rich_help_panel=AUTH)
    ] = "{timestamp}.{body}",
    hmac_encoding: Annotated[str, typer.Option(
        "--hmac-encoding", envvar="VAPI_DEV_HMAC_ENCODING", help="hex or base64.", rich_help_panel=AUTH)
    ] = "hex",
    hmac_prefix: Annotated[str, typer.Option(
        "--hmac-prefix", envvar="VAPI_DEV_HMAC_PREFIX", help="Signature prefix, e.g. 'sha256='.",
        rich_help_panel=AUTH)] = "",
    hmac_secret_base64: Annotated[bool, typer.Option(
        "--hmac-secret-base64", envvar="VAPI_DEV_HMAC_SECRET_BASE64", help="The HMAC secret is base64-encoded.",
        rich_help_panel=AUTH)] = False,
    journal: Annotated[Path | None, typer.Option(
        "--journal", envvar="VAPI_DEV_JOURNAL", help="Journal file (default: in your data directory, or "
        "$VAPI_DEV_HOME). Every exchange is recorded there for events, show, replay and export.",
        show_default=False)] = None,
    keep: Annotated[int, typer.Option("--keep", min=1, help="How many exchanges the journal keeps.")] = 10_000,
    no_journal: Annotated[bool, typer.Option("--no-journal", help="Do not record exchanges.")] = False,
    enforce_auth: Annotated[bool, typer.Option(
        "--enforce-auth", envvar="VAPI_DEV_ENFORCE_AUTH",
        help="Answer 401 to requests that fail verification and do not forward them (default: show ✗ and "
        "forward anyway).", rich_help_panel=AUTH)] = False,
) -> None:
    """Receive Vapi events, forward them to your local app, relay its replies and show them live."""
    if target and forward_to and target != forward_to:
        fail("give the target once: either as TARGET or with --forward-to", EXIT_USAGE)
    try:
        parsed = parse_target(target or forward_to or DEFAULT_TARGET)
    except TargetError as e:
        fail(str(e), EXIT_USAGE)
    if color not in ("auto", "always", "never"):
        fail(f"--color must be auto, always or never, not {color!r}", EXIT_USAGE)
    if tunnel not in ("none",):
        fail(f"--tunnel {tunnel!r} is not available in this build; use --tunnel none", EXIT_USAGE)
    auth_cfg = AuthConfig(
        secret=secret or None, bearer=bearer or None, auth_header=auth_header, bearer_prefix=bearer_prefix,
        hmac_secret=hmac_secret or None, hmac_algorithm=hmac_alg, hmac_signature_header=hmac_header,
        hmac_timestamp_header=hmac_timestamp_header, hmac_payload_format=hmac_format,
        hmac_encoding=hmac_encoding, hmac_prefix=hmac_prefix, hmac_secret_is_base64=hmac_secret_base64,
        enforce=enforce_auth)
    try:
        auth_cfg.validate()
    except AuthConfigError as e:
        fail(e.message, EXIT_USAGE)
    if enforce_auth and not auth_cfg.enabled:
        fail("--enforce-auth needs --secret, --bearer or --hmac-secret", EXIT_USAGE)
    config = Config(
        forward_to=parsed, host=host, port=port, timeout=timeout, insecure=insecure, verbose=verbose,
        full=full, json=json_out, color={"auto": None, "always": True, "never": False}[color],
        events=_types(events), exclude=_types(exclude), call=call, all=show_all, auth=auth_cfg,
        fallback=fallback, show_secrets=show_secrets,
        journal=None if no_journal else (journal or default_journal_path()), keep=keep,
    )
    code = run_listen(config)
    raise typer.Exit(code)


def run_listen(config: Config) -> int:
    """Run the listener until Ctrl-C / SIGTERM; returns the exit code."""
    out = make_console(sys.stdout, config.color)
    err = make_console(sys.stderr, config.color)
    redact = pipeline.make_view(config.auth, config.show_secrets)
    sinks: list[Any] = []
    if config.json:
        sinks.append(NdjsonSink(sys.stdout, redact if config.verbose else None))
        sinks.append(TerminalSink(err, config, redact, exchanges=False))
    else:
        sinks.append(TerminalSink(out, config, redact))
    if config.journal is not None:
        try:
            store = Journal(config.journal, config.keep)
        except JournalError as e:
            fail(f"{e.message} (use --journal PATH for another file, or --no-journal)")
        auth_cfg = config.auth
        sinks.append(JournalSink(store, secrets=auth_cfg.secret_values() if auth_cfg else (),
                                 secret_names=auth_cfg.secret_header_names() if auth_cfg else (),
                                 on_error=lambda text: err.print(f"journal: {text}", style="red", markup=False)))
    bus = Bus(sinks)
    session = Session(config, bus, tunnel_note="no tunnel (--tunnel none): only this machine can reach it",
                      checker=pipeline.check, fallback=pipeline.make_fallback() if config.fallback else None)
    if config.auth is not None and config.auth.enabled:
        session.receiver.verifier = pipeline.make_verifier(config.auth, lambda: session.public_url,
                                                           lambda: session.local_url)
    try:
        return asyncio.run(_main(session, bus))
    except ListenError as e:
        asyncio.run(bus.aclose())
        fail(str(e))


async def _main(session: Session, bus: Bus) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            bus.emit(Notice("info", "stopping… letting in-flight requests finish (Ctrl-C again to quit now)"))
            stop.set()
        else:
            os._exit(130)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    try:
        await session.run(stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await bus.aclose()
    return 0


cli_journal.register(app)


def main() -> None:
    """Console-script entry point: no tracebacks for anything a user can cause."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # the last line of defence; set VAPI_DEV_DEBUG=1 for the traceback
        if os.environ.get("VAPI_DEV_DEBUG"):
            traceback.print_exc()
        Console(file=sys.stderr, highlight=False).print(
            f"error: unexpected {type(e).__name__}: {e} (set VAPI_DEV_DEBUG=1 for details)", markup=False)
        sys.exit(EXIT_RUNTIME)
