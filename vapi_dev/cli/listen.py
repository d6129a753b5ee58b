"""`vapi-dev listen`: options to a Config, sinks, tunnel and wiring hooks around a Session, and the run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from vapi_dev.cli.common import FROM_FILE, credential, fail
from vapi_dev.config import DEFAULT_HOST, DEFAULT_PORT, DEFAULT_TARGET
from vapi_dev.errors import ExitStatus
from vapi_dev.vapi import DEFAULT_API_URL

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.config import Config
    from vapi_dev.redact import Masker
    from vapi_dev.session import Bus, Session
    from vapi_dev.ui.listening import ListenInspector

# The receiver, the tunnels, the journal and the wiring (aiohttp, httptools, sqlite3, pyngrok) are imported
# by the functions that run a listen, so `--help` stays light (see cli/common.py).

TUNNEL = "Public tunnel"
WIRE = "Point Vapi at the tunnel"
AUTH = "Authentication, as Vapi's credentials (env: VAPI_DEV_<OPTION>)"
LIMITS = "Limits (a public URL receives anyone's requests)"


def _size(option: str) -> Any:
    """A typer parser for sizes such as 1MB, 512kB or a number of bytes."""
    from vapi_dev.config import parse_size

    def parse(text: str) -> int:
        try:
            return parse_size(text)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint=option) from None

    return parse


def _types(value: list[str] | None) -> frozenset[str]:
    out: set[str] = set()
    for item in value or []:
        out.update(t.strip() for t in item.split(",") if t.strip())
    return frozenset(out)


def listen(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="TARGET",
            help="Where your app listens: a port (3000), a port and path (3000/webhook), :3000, "
            "localhost:3000/webhook or a full http(s) URL. "
            f"Default {DEFAULT_TARGET}.",
            show_default=False,
        ),
    ] = None,
    forward_to: Annotated[
        str | None, typer.Option("--forward-to", "-f", metavar="TARGET", help="Same as TARGET.", show_default=False)
    ] = None,
    port: Annotated[
        int,
        typer.Option(
            "--port", "-p", metavar="PORT", help="Port of the local receiver (0 picks a free one).", min=0, max=65535
        ),
    ] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address the receiver binds to.")] = DEFAULT_HOST,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            min=0.1,
            max=300,
            metavar="SECONDS",
            help="Deadline in seconds for every message type (default: 7.5 s for assistant-request, 20 s "
            "otherwise, like Vapi).",
            show_default=False,
        ),
    ] = None,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Skip TLS verification for an https target with a self-signed certificate."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show request and reply bodies.")] = False,
    full: Annotated[bool, typer.Option("--full", help="With -v: do not shorten long arrays and strings.")] = False,
    json_out: Annotated[
        bool,
        typer.Option(
            "--json", help="NDJSON on stdout (ready line, then one line per exchange); everything else on stderr."
        ),
    ] = False,
    ui: Annotated[
        bool,
        typer.Option(
            "--ui",
            help="The full-screen inspector instead of the line stream (q stops the listener, like Ctrl-C); "
            "without a terminal, the stream.",
        ),
    ] = False,
    color: Annotated[
        str,
        typer.Option(
            "--color", help="auto, always or never (NO_COLOR and non-terminal output turn colour off in auto)."
        ),
    ] = "auto",
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events",
            metavar="TYPES",
            help="Show only these message types (comma-separated or repeated). Never changes what is forwarded.",
            show_default=False,
        ),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", metavar="TYPES", help="Hide these message types.", show_default=False),
    ] = None,
    call: Annotated[
        str | None,
        typer.Option(
            "--call",
            metavar="CALL_ID",
            help="Show only exchanges of this call id (a prefix is enough).",
            show_default=False,
        ),
    ] = None,
    show_all: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Show each chatty event (speech-update, partial transcripts, model-output, "
            "conversation-update) instead of one compact line.",
        ),
    ] = False,
    tunnel: Annotated[
        str,
        typer.Option(
            "--tunnel",
            help="auto (ngrok when an auth token is known, else cloudflared when installed, else local "
            "only), ngrok, cloudflared (a free quick tunnel), manual (your own tunnel, with --public-url) or none.",
            rich_help_panel=TUNNEL,
        ),
    ] = "auto",
    public_url: Annotated[
        str | None,
        typer.Option(
            "--public-url",
            metavar="URL",
            envvar="VAPI_DEV_PUBLIC_URL",
            help="Public URL of a tunnel you run yourself "
            "(cloudflared, Tailscale Funnel, a VPS) that reaches this receiver; implies --tunnel manual.",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    ngrok_authtoken: Annotated[
        str | None,
        typer.Option(
            "--ngrok-authtoken",
            envvar="NGROK_AUTHTOKEN",
            help="ngrok auth token (else the one in your ngrok config file).",
            rich_help_panel=TUNNEL,
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            "--domain",
            envvar="VAPI_DEV_DOMAIN",
            help="Your ngrok static or dev domain, so the public URL stays the same every run.",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    region: Annotated[
        str | None,
        typer.Option(
            "--region",
            help="ngrok region (the agent picks the nearest by default).",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    ngrok_path: Annotated[
        str | None,
        typer.Option(
            "--ngrok-path",
            envvar="VAPI_DEV_NGROK_PATH",
            help="Use this installed ngrok agent instead of downloading one.",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    ngrok_config: Annotated[
        str | None,
        typer.Option(
            "--ngrok-config",
            help="ngrok config file to use (default: ngrok's own).",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    cloudflared_path: Annotated[
        str | None,
        typer.Option(
            "--cloudflared-path",
            metavar="PATH",
            envvar="VAPI_DEV_CLOUDFLARED_PATH",
            help="Use this cloudflared binary (else the one on PATH, or one --tunnel cloudflared downloaded).",
            rich_help_panel=TUNNEL,
            show_default=False,
        ),
    ] = None,
    tunnel_timeout: Annotated[
        float,
        typer.Option(
            "--tunnel-timeout",
            metavar="SECONDS",
            min=1,
            max=120,
            help="Seconds the tunnel (the ngrok agent or cloudflared) may take to come up.",
            rich_help_panel=TUNNEL,
        ),
    ] = 15.0,
    ngrok_timeout: Annotated[
        float | None,
        typer.Option("--ngrok-timeout", min=1, max=120, hidden=True, help="The old name of --tunnel-timeout."),
    ] = None,
    assistant: Annotated[
        list[str] | None,
        typer.Option(
            "--assistant",
            help="Point this assistant's server URL at the tunnel while listening, and put it "
            "back on stop (repeatable).",
            rich_help_panel=WIRE,
            show_default=False,
        ),
    ] = None,
    phone_number: Annotated[
        list[str] | None,
        typer.Option(
            "--phone-number", help="Same for a phone number (repeatable).", rich_help_panel=WIRE, show_default=False
        ),
    ] = None,
    tool: Annotated[
        list[str] | None,
        typer.Option("--tool", help="Same for a tool (repeatable).", rich_help_panel=WIRE, show_default=False),
    ] = None,
    org: Annotated[
        bool,
        typer.Option(
            "--org",
            help="You want events at the organisation's server URL: it has no public API, so print the "
            "dashboard steps with the public URL (and again when it changes).",
            rich_help_panel=WIRE,
        ),
    ] = False,
    path: Annotated[
        str,
        typer.Option(
            "--path", help="Path appended to the public URL for those resources, e.g. /webhook.", rich_help_panel=WIRE
        ),
    ] = "",
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="VAPI_API_KEY",
            help="Vapi private API key (only needed with --assistant, --phone-number or --tool).",
            rich_help_panel=WIRE,
            show_default=False,
            show_envvar=True,
        ),
    ] = None,
    vapi_api_url: Annotated[
        str,
        typer.Option(
            "--vapi-api-url", envvar="VAPI_API_URL", metavar="URL", help="Vapi API base URL.", rich_help_panel=WIRE
        ),
    ] = DEFAULT_API_URL,
    fallback: Annotated[
        bool,
        typer.Option(
            "--fallback",
            help="When your app is down or misses the deadline, answer Vapi with a valid, clearly "
            "marked error reply (tool-calls: every toolCallId with an error) so a live call degrades gracefully.",
        ),
    ] = False,
    show_secrets: Annotated[
        bool, typer.Option("--show-secrets", help="Do not mask secrets, tokens and signatures in the output.")
    ] = False,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret",
            envvar="VAPI_DEV_SECRET",
            help="Expected X-Vapi-Secret value.",
            rich_help_panel=AUTH,
            show_envvar=False,
            show_default=False,
        ),
    ] = None,
    bearer: Annotated[
        str | None,
        typer.Option(
            "--bearer",
            envvar="VAPI_DEV_BEARER",
            help="Expected bearer token (Vapi bearer credential).",
            rich_help_panel=AUTH,
            show_envvar=False,
            show_default=False,
        ),
    ] = None,
    auth_header: Annotated[
        str,
        typer.Option(
            "--auth-header",
            envvar="VAPI_DEV_AUTH_HEADER",
            help="Header carrying the bearer token.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "Authorization",
    no_bearer_prefix: Annotated[
        bool,
        typer.Option(
            "--no-bearer-prefix",
            envvar="VAPI_DEV_NO_BEARER_PREFIX",
            help="The token is sent without 'Bearer ' in front (Vapi's bearer credential with the prefix off).",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = False,
    hmac_secret: Annotated[
        str | None,
        typer.Option(
            "--hmac-secret",
            envvar="VAPI_DEV_HMAC_SECRET",
            help="HMAC credential secret key.",
            rich_help_panel=AUTH,
            show_envvar=False,
            show_default=False,
        ),
    ] = None,
    hmac_alg: Annotated[
        str,
        typer.Option(
            "--hmac-alg",
            envvar="VAPI_DEV_HMAC_ALG",
            help="sha256, sha512 or sha1.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "sha256",
    hmac_header: Annotated[
        str,
        typer.Option(
            "--hmac-header",
            envvar="VAPI_DEV_HMAC_HEADER",
            help="Signature header name.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "x-signature",
    hmac_timestamp_header: Annotated[
        str,
        typer.Option(
            "--hmac-timestamp-header",
            envvar="VAPI_DEV_HMAC_TIMESTAMP_HEADER",
            help="Timestamp header name.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "x-timestamp",
    hmac_format: Annotated[
        str,
        typer.Option(
            "--hmac-format",
            envvar="VAPI_DEV_HMAC_FORMAT",
            help="Signed payload: {timestamp}, {body}, {method} and {url} (the public URL).",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "{timestamp}.{body}",
    hmac_encoding: Annotated[
        str,
        typer.Option(
            "--hmac-encoding",
            envvar="VAPI_DEV_HMAC_ENCODING",
            help="hex or base64.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "hex",
    hmac_prefix: Annotated[
        str,
        typer.Option(
            "--hmac-prefix",
            envvar="VAPI_DEV_HMAC_PREFIX",
            help="Signature prefix, e.g. 'sha256='.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = "",
    hmac_secret_base64: Annotated[
        bool,
        typer.Option(
            "--hmac-secret-base64",
            envvar="VAPI_DEV_HMAC_SECRET_BASE64",
            help="The HMAC secret is base64-encoded.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = False,
    hmac_max_skew: Annotated[
        float,
        typer.Option(
            "--hmac-max-skew",
            envvar="VAPI_DEV_HMAC_MAX_SKEW",
            min=0,
            metavar="SECONDS",
            help="Refuse a signed request whose timestamp is further than this from now (a replay); 0: no check.",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = 300.0,
    journal: Annotated[
        Path | None,
        typer.Option(
            "--journal",
            envvar="VAPI_DEV_JOURNAL",
            help="Journal file (default: in your data directory, or "
            "$VAPI_DEV_HOME). Every exchange is recorded there for events, show, replay and export.",
            show_default=False,
        ),
    ] = None,
    keep: Annotated[
        int, typer.Option("--keep", min=1, metavar="N", help="How many exchanges the journal keeps.")
    ] = 10_000,
    journal_body_limit: Annotated[
        int,
        typer.Option(
            "--journal-body-limit",
            metavar="SIZE",
            parser=_size("--journal-body-limit"),
            help="How much of each request and reply body the journal keeps (e.g. 1MB, 0 for none); the real "
            "size is recorded, and replay refuses a cut body unless given one.",
        ),
    ] = "1MB",  # type: ignore[assignment]
    journal_max_size: Annotated[
        int,
        typer.Option(
            "--journal-max-size",
            metavar="SIZE",
            parser=_size("--journal-max-size"),
            help="The journal's total size; beyond it the oldest exchanges are dropped (e.g. 500MB).",
        ),
    ] = "500MB",  # type: ignore[assignment]
    max_connections: Annotated[
        int,
        typer.Option(
            "--max-connections",
            min=1,
            metavar="N",
            help="Open connections served at once; more are answered 503 and closed.",
            rich_help_panel=LIMITS,
        ),
    ] = 512,
    max_headers: Annotated[
        int,
        typer.Option(
            "--max-headers",
            min=1,
            metavar="N",
            help="Header fields a request may have; more are answered 431.",
            rich_help_panel=LIMITS,
        ),
    ] = 100,
    head_timeout: Annotated[
        float,
        typer.Option(
            "--head-timeout",
            min=0.001,
            metavar="SECONDS",
            help="A request's line and headers must arrive within this, else 408.",
            rich_help_panel=LIMITS,
        ),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout",
            min=0.001,
            metavar="SECONDS",
            help="A request body may stop moving this long at most, else 408.",
            rich_help_panel=LIMITS,
        ),
    ] = 30.0,
    idle_timeout: Annotated[
        float,
        typer.Option(
            "--idle-timeout",
            min=0.001,
            metavar="SECONDS",
            help="An idle keep-alive connection is closed after this.",
            rich_help_panel=LIMITS,
        ),
    ] = 60.0,
    no_journal: Annotated[bool, typer.Option("--no-journal", help="Do not record exchanges.")] = False,
    enforce_auth: Annotated[
        bool,
        typer.Option(
            "--enforce-auth",
            envvar="VAPI_DEV_ENFORCE_AUTH",
            help="Answer 401 to requests that fail verification and do not forward them (default: show ✗ and "
            "forward anyway).",
            rich_help_panel=AUTH,
            show_envvar=False,
        ),
    ] = False,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", metavar="FILE", help=f"--secret's value. {FROM_FILE}", rich_help_panel=AUTH),
    ] = None,
    bearer_file: Annotated[
        Path | None,
        typer.Option("--bearer-file", metavar="FILE", help=f"--bearer's token. {FROM_FILE}", rich_help_panel=AUTH),
    ] = None,
    hmac_secret_file: Annotated[
        Path | None,
        typer.Option(
            "--hmac-secret-file", metavar="FILE", help=f"--hmac-secret's key. {FROM_FILE}", rich_help_panel=AUTH
        ),
    ] = None,
) -> None:
    """Receive Vapi events, forward them to your local app, relay its replies and show them live."""
    from vapi_dev.config import Config, parse_target
    from vapi_dev.journal.store import default_journal_path
    from vapi_dev.tunnels import TunnelConfig
    from vapi_dev.vapi.auth import AuthConfig
    from vapi_dev.wiring.hook import WiringConfig

    secret = credential(secret, secret_file, "--secret")
    bearer = credential(bearer, bearer_file, "--bearer")
    hmac_secret = credential(hmac_secret, hmac_secret_file, "--hmac-secret")
    if target and forward_to and target != forward_to:
        fail("give the target once: either as TARGET or with --forward-to", ExitStatus.USAGE)
    parsed = parse_target(target or forward_to or DEFAULT_TARGET)
    if color not in ("auto", "always", "never"):
        fail(f"--color must be auto, always or never, not {color!r}", ExitStatus.USAGE)
    tunnel_cfg = TunnelConfig(
        provider=tunnel,
        public_url=public_url or None,
        ngrok_authtoken=ngrok_authtoken or None,
        domain=domain or None,
        region=region,
        ngrok_path=ngrok_path or None,
        ngrok_config_path=ngrok_config,
        cloudflared_path=cloudflared_path or None,
        startup_timeout=tunnel_timeout if ngrok_timeout is None else ngrok_timeout,
    )
    wiring_cfg = WiringConfig(
        assistants=tuple(assistant or ()),
        phone_numbers=tuple(phone_number or ()),
        tools=tuple(tool or ()),
        path=path,
        api_key=api_key or None,
        api_url=vapi_api_url,
    )
    auth_cfg = AuthConfig(
        secret=secret or None,
        bearer=bearer or None,
        auth_header=auth_header,
        bearer_prefix=not no_bearer_prefix,
        hmac_secret=hmac_secret or None,
        hmac_algorithm=hmac_alg,
        hmac_signature_header=hmac_header,
        hmac_timestamp_header=hmac_timestamp_header,
        hmac_payload_format=hmac_format,
        hmac_encoding=hmac_encoding,
        hmac_prefix=hmac_prefix,
        hmac_secret_is_base64=hmac_secret_base64,
        hmac_max_skew=hmac_max_skew,
        enforce=enforce_auth,
    )
    auth_cfg.validate()
    if enforce_auth and not auth_cfg.enabled:
        fail("--enforce-auth needs --secret, --bearer or --hmac-secret", ExitStatus.USAGE)
    config = Config(
        forward_to=parsed,
        host=host,
        port=port,
        timeout=timeout,
        insecure=insecure,
        verbose=verbose,
        full=full,
        json=json_out,
        color={"auto": None, "always": True, "never": False}[color],
        events=_types(events),
        exclude=_types(exclude),
        call=call,
        all=show_all,
        auth=auth_cfg,
        fallback=fallback,
        show_secrets=show_secrets,
        journal=None if no_journal else (journal or default_journal_path()),
        keep=keep,
        journal_body_limit=journal_body_limit,
        journal_max_size=journal_max_size,
        max_connections=max_connections,
        max_headers=max_headers,
        head_timeout=head_timeout,
        body_timeout=body_timeout,
        idle_timeout=idle_timeout,
        tunnel=tunnel_cfg,
        wiring=wiring_cfg,
        org=org,
    )
    code = run_listen(config, ui=ui)
    raise typer.Exit(code)


def run_listen(config: Config, ui: bool = False) -> int:
    """Run the listener until Ctrl-C / SIGTERM; returns the exit code."""
    import asyncio

    from vapi_dev import tunnels
    from vapi_dev.exchange import Notice
    from vapi_dev.journal.store import Journal, JournalError
    from vapi_dev.journal.writer import JournalSink
    from vapi_dev.output.ndjson import NdjsonSink
    from vapi_dev.output.terminal import TerminalSink, make_console
    from vapi_dev.output.view import make_view
    from vapi_dev.session import Bus, Session
    from vapi_dev.tunnels import TunnelError
    from vapi_dev.vapi import messages as vapi

    out = make_console(sys.stdout, config.color)
    err = make_console(sys.stderr, config.color)
    redact = make_view(config.auth, config.show_secrets)
    sinks: list[Any] = []
    inspector = _inspector(config, redact.mask, err) if ui else None
    if config.json:
        sinks.append(NdjsonSink(sys.stdout, redact if config.verbose else None, mask=redact.mask))
        sinks.append(TerminalSink(err, config, redact, exchanges=False))
    elif inspector is not None:
        sinks.append(inspector.sink)  # the full-screen inspector instead of the line stream
    else:
        sinks.append(TerminalSink(out, config, redact))
    if config.journal is not None:
        try:
            store = Journal(
                config.journal, config.keep, body_limit=config.journal_body_limit, max_size=config.journal_max_size
            )
        except JournalError as e:
            fail(f"{e.message} (use --journal PATH for another file, or --no-journal)")
        auth_cfg = config.auth
        sinks.append(
            JournalSink(
                store,
                secrets=auth_cfg.secret_values() if auth_cfg else (),
                secret_names=auth_cfg.secret_header_names() if auth_cfg else (),
                # from the writer thread, once: a notice in the stream and in --json (session is made below,
                # before anything can be written)
                on_error=lambda text: session.notice_threadsafe(Notice("error", f"journal: {text}")),
            )
        )
    from vapi_dev.cli.running import ListenerFile

    sinks.append(ListenerFile())  # so `trigger` finds this listener
    bus = Bus(sinks)
    spinner = Spinner(err, to=inspector.progress if inspector is not None else None)
    wants_url = bool((config.wiring is not None and config.wiring.enabled) or config.org)
    try:
        # auto's cloudflared falls back to local only when it fails, unless Vapi resources wait for the URL
        tunnel = tunnels.choose(
            config.tunnel or tunnels.TunnelConfig(), progress=spinner.update, local_fallback=not wants_url
        )
    except TunnelError as e:
        fail(e.message, ExitStatus.USAGE)
    if wants_url and isinstance(tunnel, tunnels.NoTunnel):
        fail(
            "--assistant, --phone-number, --tool and --org need a public URL: set NGROK_AUTHTOKEN (or "
            "--ngrok-authtoken) for ngrok, or pass --public-url for your own tunnel",
            ExitStatus.USAGE,
        )
    note = getattr(tunnel, "notice", None)
    loopback = _is_loopback(config.host)
    if isinstance(tunnel, tunnels.NoTunnel) and note is None:
        reach = "only this machine can reach the receiver" if loopback else "no public URL"
        note = f"no tunnel (--tunnel none): {reach}"
    session = Session(
        config,
        bus,
        tunnel=tunnel,
        tunnel_note=note,
        on_ready=spinner.stop,
    )
    if not loopback:
        session.notice(
            Notice(
                "warning",
                f"--host {config.host}: the receiver is open to your network, not only to this machine; anyone "
                "who can reach it can send requests to your app (--enforce-auth refuses unsigned ones)",
            )
        )
    unknown = sorted(t for t in config.events | config.exclude if vapi.type_info(t).name == "unknown" and t != "http")
    if unknown:
        session.notice(
            Notice(
                "warning",
                f"not a Vapi message type: {', '.join(unknown)} (see `vapi-dev trigger "
                "--list`); non-Vapi requests are filtered as 'http'",
            )
        )
    # A ListenError, TunnelError or VapiApiError ends the run after _main has stopped the spinner and closed
    # the sinks; `guarded` reports it.
    return asyncio.run(_main(session, bus, spinner, inspector))


def _inspector(config: Config, mask: Masker, err: Console) -> ListenInspector | None:
    """The inspector for --ui, or None (said in one line on stderr) where it cannot run: the stream then."""
    from vapi_dev.ui.tty import not_a_terminal

    why = not_a_terminal(sys.stdin, sys.stdout, json=config.json)
    if why is not None:
        err.print(f"--ui needs a terminal ({why}): showing the line stream instead.", markup=False, highlight=False)
        return None
    from vapi_dev.ui.listening import ListenInspector

    return ListenInspector(mask, config.auth, err)


def _is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the receiver reachable from this machine only."""
    import ipaddress

    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any interface


class Spinner:
    """A progress line on stderr while the tunnel starts (a spinner on a terminal, plain lines otherwise)."""

    def __init__(self, console: Console, to: Callable[[str], None] | None = None) -> None:
        self.console = console
        self.to = to  # --ui: progress goes to the inspector's status line instead
        self._status: Any = None
        self._last = ""

    def update(self, text: str) -> None:
        if self.to is not None:
            self.to(text)
            return
        if not self.console.is_terminal:
            if text.split("…")[0] != self._last.split("…")[0]:
                self.console.print(text, markup=False, highlight=False)
            self._last = text
            return
        if self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


def _loop_errors(bus: Bus) -> Callable[[Any, dict[str, Any]], None]:
    """asyncio's complaints (an accept() that ran out of file descriptors, a callback that failed) as one
    notice line each, at most once a minute per kind, instead of tracebacks on stderr."""
    import errno
    import time

    from vapi_dev.exchange import Notice

    told: dict[str, float] = {}

    def handle(loop: Any, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
            kind = "fds"
            text = (
                "out of file descriptors: new connections wait until some close "
                "(lower --max-connections, or raise `ulimit -n`)"
            )
        else:
            message = str(context.get("message") or "unexpected error")
            kind = message
            text = f"asyncio: {message}" + (f" ({exc!r})" if exc is not None else "")
        now = time.monotonic()
        if now - told.get(kind, -3600.0) >= 60.0:
            told[kind] = now
            bus.emit(Notice("warning", text))

    return handle


async def _main(session: Session, bus: Bus, spinner: Spinner, inspector: ListenInspector | None = None) -> int:
    import asyncio
    import os
    import signal

    from vapi_dev import tunnels
    from vapi_dev.exchange import Notice
    from vapi_dev.wiring import hook as wiring
    from vapi_dev.wiring.notes import OrgHint
    from vapi_dev.wiring.state import pending_state

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = 0

    def on_signal() -> None:
        nonlocal signals
        signals += 1
        if signals == 1:
            bus.emit(Notice("info", "stopping… letting in-flight requests finish (Ctrl-C again to quit now)"))
            stop.set()
        else:  # quit now: no agent (cloudflared) may outlive vapi-dev
            tunnels.kill_children()
            os._exit(ExitStatus.INTERRUPTED)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    loop.set_exception_handler(_loop_errors(bus))
    try:
        wiring_cfg = session.config.wiring
        if wiring_cfg is not None and wiring_cfg.enabled:
            hook = wiring.build(wiring_cfg, session.notice)
            spinner.update("Reading your Vapi resources…")
            try:
                await hook.prepare()
            finally:
                spinner.stop()
            session.add_hook(hook)
        else:
            pending = pending_state()
            if pending is not None:
                session.notice(Notice("warning", pending.text))
        if session.config.org:
            session.add_hook(OrgHint(wiring_cfg.path if wiring_cfg is not None else "", session.notice))
        if session.tunnel is not None and not isinstance(session.tunnel, tunnels.NoTunnel):
            spinner.update(f"Starting the {session.tunnel.name} tunnel…")
        if inspector is not None:  # the app runs beside the session, in this loop; q stops it as Ctrl-C does
            await inspector.run(session.run(stop), stop, lambda: bool(session.receiver.port))
        else:
            await session.run(stop)
    finally:
        spinner.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await bus.aclose()
    return ExitStatus.OK
