"""What the scripts under scripts/ share: a free loopback port, waiting for one to accept, stopping processes,
the installed console script."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Until 127.0.0.1:``port`` accepts; RuntimeError after ``timeout`` or when ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited ({proc.returncode}) before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing came up on port {port} after {timeout:.0f} s")


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate every process, then wait for each (10 s at most, then kill)."""
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def console_script() -> str:
    """The `vapi-dev` console script of the Python running this script (the project's .venv)."""
    found = Path(sys.executable).parent / "vapi-dev"
    if not found.exists():
        raise SystemExit(f"no vapi-dev console script beside {sys.executable}; run scripts/install")
    return str(found)
