"""Every command's --help is readable at 80 columns (#12): whole option names, readable metavars."""

from __future__ import annotations

import re

import pytest
import typer.main

from tests.support.cli import run_cli
from vapi_dev.cli import app

COMMANDS = ["listen", "trigger", "events", "show", "replay", "export", "restore"]
# typer's own placeholders: <str>, <bool>, <list[str]>, <int range>, and ranges such as [x>=1] or [0<=x<=9]
PLACEHOLDER = re.compile(r"<(str|bool|int|float|path|list\[\w+\])[^>]*>|\[[\d.]*<?=?x[<>]=")


def _help(command: str) -> str:
    r = run_cli(command, "--help", env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert r.returncode == 0, r.stderr
    return r.stdout


def _option_names(command: str) -> list[str]:
    click_cmd = typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    shown = [p for p in click_cmd.params if not getattr(p, "hidden", False)]  # an old name kept working
    return [o for p in shown for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_no_type_placeholders(command: str) -> None:
    out = _help(command)
    assert not PLACEHOLDER.search(out), PLACEHOLDER.findall(out)
    assert all(len(line) <= 80 for line in out.splitlines())


@pytest.mark.parametrize(
    "command",
    COMMANDS,
)
def test_help_never_cuts_an_option_name(command: str) -> None:
    words = set(re.findall(r"--[\w-]+", _help(command)))
    missing = [name for name in _option_names(command) if name not in words]
    assert not missing


def test_listen_target_help_mentions_a_port_and_path() -> None:
    out = " ".join(_help("listen").split())
    assert "TARGET" in out and "3000/webhook" in out
