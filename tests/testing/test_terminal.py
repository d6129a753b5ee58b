"""What a person sees: `vapi-dev test` in a real pseudo-terminal, in colour unless NO_COLOR; a pipe is plain."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pexpect

from tests.support.cli import ROOT
from tests.testing.apps import CALL, SCRIPT, Running, vapi_test, write_fixture

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7])m")  # a foreground colour (red, green, …)


def in_terminal(*args: str, env: dict[str, str]) -> str:
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")} | env | {"TERM": "xterm-256color"}
    child = pexpect.spawn(str(SCRIPT), ["test", *args], env=full, cwd=str(ROOT), encoding="utf-8", timeout=60)
    child.setwinsize(40, 120)
    out = child.read()
    child.close()
    return str(out)


def test_colour_on_a_terminal_none_with_no_color_and_none_in_a_pipe(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    args = (str(tmp_path), "--against", f"{app.url}/wrong")
    coloured = in_terminal(*args, env={})
    assert COLOUR.search(coloured) and "1 passed, 2 failed" in coloured
    plain = in_terminal(*args, env={"NO_COLOR": "1"})
    assert not COLOUR.search(plain) and "1 passed, 2 failed" in plain
    piped = vapi_test(*args, env={"NO_COLOR": ""})
    assert "\x1b" not in piped.stdout and "1 passed, 2 failed" in piped.stdout


def test_test_help_is_light_and_readable() -> None:
    from tests.cli.test_help_imports import HEAVY, probe

    result = probe(["test", "--help"])
    assert result["code"] == 0 and "--against" in result["help"] and "--samples" in result["help"]
    assert not HEAVY & set(result["modules"])
    assert "PATHS" in result["help"] and "<" not in result["help"]  # readable metavars, not typer's <str>
