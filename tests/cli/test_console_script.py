"""Every command through the installed `vapi-dev` console script: clean output and exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.net import free_port

SCRIPT = Path(sys.executable).with_name("vapi-dev")


def run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    exe = str(SCRIPT) if SCRIPT.exists() else shutil.which("vapi-dev")
    if exe is None:
        pytest.skip("the vapi-dev console script is not installed in this environment")
    env = {**os.environ, "VAPI_DEV_HOME": str(home)}
    env.pop("VAPI_API_KEY", None)
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["--version"], 0, "vapi-dev 0.1.0"),
        (["--help"], 0, "listen"),
        (["listen", "--help"], 0, "--forward-to"),
        (["listen", "not a target!"], 2, "error:"),
        (["trigger", "--list"], 0, "tool-calls"),
        (["trigger", "no-such-type"], 2, "no-such-type"),
        (["events"], 1, "run `vapi-dev listen` first"),
        (["show", "last"], 1, ""),
        (["replay", "last"], 1, ""),
        (["export", "--call", "nope"], 1, ""),
        (["restore"], 0, "nothing to restore"),
    ],
)
def test_commands(tmp_path: Path, args: list[str], code: int, expected: str) -> None:
    r = run(*args, home=tmp_path)
    assert r.returncode == code, (args, r.stdout, r.stderr)
    assert "Traceback" not in r.stdout + r.stderr
    assert expected.lower() in (r.stdout + r.stderr).lower()


def test_trigger_with_nothing_listening(tmp_path: Path) -> None:
    r = run("trigger", "tool-calls", "--to", f"http://127.0.0.1:{free_port()}", home=tmp_path)
    assert r.returncode == 1 and "nothing is listening" in r.stderr and "Traceback" not in r.stderr
