"""The typer app: builds a Config, runs commands, and is the only place that prints fatal errors."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from vapi_dev import __version__
from vapi_dev.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TARGET, Config, TargetError, parse_target
from vapi_dev.exchange import Notice
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
    config = Config(
        forward_to=parsed, host=host, port=port, timeout=timeout, insecure=insecure, verbose=verbose,
        full=full, json=json_out, color={"auto": None, "always": True, "never": False}[color],
        events=_types(events), exclude=_types(exclude), call=call, all=show_all,
    )
    code = run_listen(config)
    raise typer.Exit(code)


def _redactor(config: Config) -> Any:
    def view(ex: Any) -> tuple[Any, Any]:
        req = ex.payload if ex.payload is not None else (ex.body.decode("utf-8", "replace") or None)
        reply = ex.response_json()
        if reply is None and ex.response_body:
            reply = ex.response_body.decode("utf-8", "replace")
        return req, reply

    return view


def run_listen(config: Config) -> int:
    """Run the listener until Ctrl-C / SIGTERM; returns the exit code."""
    out = make_console(sys.stdout, config.color)
    err = make_console(sys.stderr, config.color)
    redact = _redactor(config)
    sinks: list[Any] = []
    if config.json:
        sinks.append(NdjsonSink(sys.stdout, redact if config.verbose else None))
        sinks.append(TerminalSink(err, config, redact, exchanges=False))
    else:
        sinks.append(TerminalSink(out, config, redact))
    bus = Bus(sinks)
    session = Session(config, bus, tunnel_note="no tunnel (--tunnel none): only this machine can reach it")
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
