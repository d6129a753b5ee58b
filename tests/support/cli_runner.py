"""The journal commands (trigger, events, show, export, replay) in-process, through typer's CliRunner."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from vapi_dev.cli import journal as cli_journal


def make_journal_cli() -> typer.Typer:
    """trigger, events, show, export and replay as one typer app."""
    app = typer.Typer()
    cli_journal.register(app)
    return app


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a journal command through CliRunner: (exit code, stdout, stderr)."""
    runner = CliRunner()
    result = runner.invoke(make_journal_cli(), list(args), env={"NO_COLOR": "1", "COLUMNS": "200", **(env or {})})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr
