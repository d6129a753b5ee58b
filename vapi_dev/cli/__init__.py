"""The typer app: registers every command, and ``main``, the console script's last line of defence."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer

from vapi_dev import __version__
from vapi_dev.cli import journal, listen, restore, test_cmd
from vapi_dev.cli import ui as cli_ui
from vapi_dev.cli.common import guarded, readable_help, report
from vapi_dev.errors import ExitStatus, VapiDevError

app = typer.Typer(
    name="vapi-dev",
    help="Develop against Vapi server URLs on your own machine: receive Vapi's events through a public "
    "tunnel, forward them to your local app byte for byte, relay its replies, and see every event live.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vapi-dev {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """vapi-dev: a local development companion for Vapi server URLs."""


app.command("listen")(guarded(listen.listen))
journal.register(app)
restore.register(app)
app.command("ui")(guarded(cli_ui.ui))
app.command("test")(guarded(test_cmd.test))
readable_help(app)


def main() -> None:
    """Console-script entry point: no tracebacks for anything a user can cause."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(ExitStatus.INTERRUPTED)
    except VapiDevError as e:  # a command registered without `guarded`: still one line, its exit status
        report(e.message)
        sys.exit(e.exit_status)
    except Exception as e:  # the last line of defence; set VAPI_DEV_DEBUG=1 for the traceback
        if os.environ.get("VAPI_DEV_DEBUG"):
            traceback.print_exc()
        from rich.console import Console

        Console(file=sys.stderr, highlight=False).print(
            f"error: unexpected {type(e).__name__}: {e} (set VAPI_DEV_DEBUG=1 for details)", markup=False
        )
        sys.exit(ExitStatus.RUNTIME)
