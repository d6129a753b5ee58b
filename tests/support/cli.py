"""The real `vapi-dev` CLI in a subprocess (``python -m vapi_dev`` from the repository root)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # tests/support/cli.py → the repository


class CliProcess:
    """A running CLI. Its pipes are unbuffered on this side: a line read here takes nothing more off the
    pipe, so what ``interrupt()`` collects afterwards is exactly the output not read yet."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vapi_dev", *args],
            bufsize=0,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
            cwd=ROOT,
        )

    def read_json_line(self, timeout: float = 15.0) -> dict[str, Any]:
        """Next NDJSON line on stdout (bounded wait; the listener prints one per event)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"CLI ended early; stderr: {self.stderr_now()}")
            text = line.decode().strip()
            if text:
                return dict(json.loads(text))
        raise AssertionError("no line in time")

    def read_stdout_until(self, text: str, timeout: float = 10.0) -> str:
        """Bounded wait for a stdout line containing ``text``; returns all of stdout read until then."""
        assert self.proc.stdout is not None
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode(errors="replace")
            if not line:
                raise AssertionError(f"CLI ended before printing {text!r}; stdout: {''.join(seen)!r}")
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"no stdout line with {text!r} in time; stdout: {''.join(seen)!r}")

    def read_stderr_line_containing(self, text: str, timeout: float = 10.0) -> str:
        """Bounded wait for a stderr line containing ``text``."""
        assert self.proc.stderr is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline().decode(errors="replace")
            if not line:
                break
            if text in line:
                return line
        raise AssertionError(f"no stderr line with {text!r}")

    def stderr_now(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def interrupt(self, sig: int | None = signal.SIGINT, timeout: float = 15.0) -> tuple[int, str, str]:
        """Send ``sig`` (None: just wait) and collect the exit code and the output not read yet."""
        if sig is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=10)


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30.0, input: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to completion and capture its output (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "vapi_dev", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
        input=input.decode() if input else None,
    )
