"""`--help` stays light: it imports none of aiohttp, sqlite3, pyngrok, httptools or textual (they load when a command
runs)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

HEAVY = {"aiohttp", "sqlite3", "pyngrok", "httptools", "textual"}

# Imports the CLI and runs it on the arguments, then reports the exit code, the output and every top-level
# package in sys.modules.
PROBE = """
import contextlib, io, json, sys
from vapi_dev.cli import app
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        app(sys.argv[1:], prog_name="vapi-dev")
    except SystemExit as e:
        code = e.code
print(json.dumps({"code": code, "help": out.getvalue(), "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def probe(args: list[str], prelude: str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", prelude + PROBE, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(
    "args", [["--help"], ["listen", "--help"], ["trigger", "--help"], ["ui", "--help"]], ids=" ".join
)
def test_help_imports_no_heavy_module(args: list[str]) -> None:
    result = probe(args)
    assert result["code"] == 0
    assert "Usage: vapi-dev" in result["help"]
    loaded = HEAVY & set(result["modules"])
    assert not loaded, f"vapi-dev {' '.join(args)} imported {sorted(loaded)}"


def test_probe_sees_heavy_modules() -> None:
    """The probe itself works: a heavy module imported before the CLI is reported."""
    assert "sqlite3" in probe(["--help"], prelude="import sqlite3\n")["modules"]
    assert "textual" in probe(["--help"], prelude="import textual.app\n")["modules"]
