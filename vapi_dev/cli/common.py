"""Shared by the journal and trigger commands: options, opening the journal, sending a request."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, ParamSpec, TypeVar

import typer
from typer import _click as click
from typer.core import TyperCommand, TyperOption

from vapi_dev.errors import ExitStatus, VapiDevError

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.exchange import Exchange
    from vapi_dev.journal.store import Journal
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig

# Only light imports above: typer builds every command (their options and defaults) for any --help, so this
# module, the commands' modules and their defaults must not pull in aiohttp, sqlite3, pyngrok or httptools.
# Those are imported inside the functions that use them.

DEFAULT_TRIGGER_URL = "http://127.0.0.1:4242"

JournalOpt = Annotated[
    Path | None, typer.Option("--journal", metavar="FILE", help="Journal file (default: user data dir).")
]
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
FROM_FILE = "Read it from a file (- for standard input), which keeps it out of the process list."
SecretFileOpt = Annotated[
    Path | None,
    typer.Option("--secret-file", metavar="FILE", help=f"--secret's value. {FROM_FILE}", show_default=False),
]
BearerFileOpt = Annotated[
    Path | None,
    typer.Option("--bearer-file", metavar="FILE", help=f"--bearer's token. {FROM_FILE}", show_default=False),
]
HmacFileOpt = Annotated[
    Path | None,
    typer.Option("--hmac-secret-file", metavar="FILE", help=f"--hmac-secret's key. {FROM_FILE}", show_default=False),
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds to wait for each reply.")]

# The metavar --help shows for an option that names none, by the type of its value: typer's own are <str>,
# <list[str]>, <int range> and the like, flags show <bool>, and a range is added as "[x>=1]" (an option's
# help text says what its limits mean instead).
_METAVARS: dict[object, str] = {int: "N", float: "NUMBER", str: "TEXT", Path: "FILE", list[str]: "TEXT"}


def _metavar(param: click.Parameter) -> str | None:
    if not isinstance(param, TyperOption):
        return None  # an argument shows its name (its metavar) alone
    if param.metavar is not None:
        return param.metavar
    if param.is_flag:
        return None
    return _METAVARS.get(param.type_descriptor.annotation, "VALUE")


class HelpCommand(TyperCommand):
    """A command whose --help shows readable metavars (FILE, N, TEXT, nothing for a flag) and no ranges."""

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for param in self.get_params(ctx):
            shown = _metavar(param)
            # typer reads these two per parameter when it lays out the options panel
            setattr(param, "display_type_rich", lambda ctx, shown=shown: shown)  # noqa: B010
            setattr(param, "_get_number_range_help_str", lambda: None)  # noqa: B010
        super().format_help(ctx, formatter)


def readable_help(app: typer.Typer) -> None:
    """Give every command registered on ``app`` so far the HelpCommand --help (unless it has its own class)."""
    for info in app.registered_commands:
        if info.cls in (None, TyperCommand):
            info.cls = HelpCommand


P = ParamSpec("P")
R = TypeVar("R")


def report(message: str) -> None:
    """Print one clear ``error:`` line on stderr.

    The message is plain text (never rich markup), so paths or values with brackets print as they are.
    """
    from rich.text import Text

    from vapi_dev.output.lines import printable
    from vapi_dev.output.terminal import make_console

    line = Text("error: ", style="bold red")
    line.append(printable(message, None))  # messages quote paths, URLs and values from files or the network
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

    Errors raised below the CLI are VapiDevErrors; ``guarded`` reports them the same way.
    """
    report(message)
    raise typer.Exit(code)


def stdout_console() -> Console:
    """The console for a command's output on stdout; piped, one row per line rather than wrapping at 80 columns."""
    from rich.console import Console

    wide = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
    return Console(highlight=False, width=wide)


def open_journal(path: Path | None) -> Journal:
    """The journal at ``path`` (default: the user data dir's), which must exist already."""
    from vapi_dev.journal.store import Journal, default_journal_path

    return Journal(path or default_journal_path(), create=False)


def get_exchange(journal: Journal, key: str) -> Exchange:
    """The exchange ``key`` (id, row number or 'last'), or a usage error saying there is none."""
    ex = journal.get(key)
    if ex is None:
        what = "the journal is empty" if key == "last" else f"no exchange {key!r} in the journal"
        fail(f"{what} ({journal.path}); `vapi-dev events` lists recorded exchanges.", ExitStatus.USAGE)
    return ex


def credential(value: str | None, file: Path | None, option: str) -> str | None:
    """A credential given as ``option`` (or its environment variable), or read from ``option``-file.

    A file holds the value alone; one trailing newline is dropped. ``-`` reads standard input.
    """
    if file is None:
        return value
    if value:
        fail(
            f"give {option} or {option}-file, not both (the environment variable counts as {option}).", ExitStatus.USAGE
        )
    try:
        text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        fail(f"cannot read {option}-file {file} ({why}).", ExitStatus.USAGE)
    text = text[:-1] if text.endswith("\n") else text
    text = text[:-1] if text.endswith("\r") else text
    if not text.strip():
        fail(f"{option}-file {file} is empty.", ExitStatus.USAGE)
    return text


def auth_config(
    secret: str | None,
    bearer: str | None,
    hmac_secret: str | None,
    files: tuple[Path | None, Path | None, Path | None] = (None, None, None),
) -> AuthConfig:
    """The validated credentials to send with --secret, --bearer and --hmac-secret (or their -file forms)."""
    from vapi_dev.vapi.auth import AuthConfig

    secret = credential(secret, files[0], "--secret")
    bearer = credential(bearer, files[1], "--bearer")
    hmac_secret = credential(hmac_secret, files[2], "--hmac-secret")
    cfg = AuthConfig(secret=secret, bearer=bearer, hmac_secret=hmac_secret)
    cfg.validate()
    return cfg


# The variables listen reads its credentials from: the journal commands mask their values too, since the
# journal keeps request bodies and query strings as they came (replay needs the exact bytes).
SECRET_ENVVARS = ("VAPI_DEV_SECRET", "VAPI_DEV_BEARER", "VAPI_DEV_HMAC_SECRET")


def masker(auth: AuthConfig | None = None, *, show_secrets: bool = False) -> Masker:
    """The Masker of a journal or trigger command: the name rules, the secrets given to it (``auth``) and
    those in the environment; everything kept as it is with ``show_secrets``."""
    from vapi_dev.redact import Masker

    values = [v for v in (os.environ.get(name) for name in SECRET_ENVVARS) if v]
    names: list[str] = []
    if auth is not None:
        values += auth.secret_values()
        names = auth.secret_header_names()
    return Masker(values, names, enabled=not show_secrets)


def print_body(console: Console, body: bytes, mask: Masker, max_lines: int | None = None) -> None:
    """Print a body indented as ``body_text`` has it (JSON highlighted on a colour terminal), masked; only
    its first ``max_lines`` lines (None: all), then a line saying how many more there are."""
    from rich.syntax import Syntax

    from vapi_dev.output.bodies import body_view
    from vapi_dev.output.lines import printable, printable_json

    text, is_json = body_view(body, mask)
    # Pretty JSON has C0 escaped by the encoder and newlines only as layout; any other text is escaped whole.
    text = printable_json(text) if is_json else printable(text, None)
    more = 0
    if max_lines is not None:
        lines = text.split("\n")
        if len(lines) > max_lines:
            more = len(lines) - max_lines
            text = "\n".join(lines[:max_lines])
    if not text:
        console.print("  (empty)", style="dim")
    elif is_json and console.is_terminal and not console.no_color and text.lstrip()[:1] in "{[":
        console.print(Syntax(text, "json", theme="ansi_dark", background_color="default", word_wrap=True))
    else:
        console.print(text, markup=False)
    if more:
        console.print(f"  … {more} more lines (-v shows the whole reply)", style="dim", markup=False)


def format_ms(value: float | None) -> str:
    """A duration in whole milliseconds, or a dash when there is none."""
    return "—" if value is None else f"{value:.0f} ms"
