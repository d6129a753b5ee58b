"""``--start CMD``: the app started before the tests, waited for until its port accepts, stopped after.

The command runs through the shell in a process group of its own, its output kept in a temporary file
(shown when it fails to come up, or when tests fail); stopping sends SIGTERM to the whole group, then
SIGKILL after a grace period, so a shell's children or a dev server's workers go too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

from vapi_dev.errors import VapiDevError
from vapi_dev.resend import base_url

OUTPUT_TAIL_BYTES = 64 * 1024  # of the app's output kept for showing
STOP_GRACE_S = 5.0
POLL_S = 0.05


class StartError(VapiDevError):
    """The app did not come up; ``output`` is the end of what it printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def host_port(url: str) -> tuple[str, int]:
    """Where ``url`` (a URL or a port) connects: host and port (80/443 by scheme when it names none)."""
    parts = urlsplit(base_url(url))
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or "127.0.0.1"
    return host, port or (443 if parts.scheme == "https" else 80)


def accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class App:
    """A started app: its process (group), its output so far, and ``stop``."""

    def __init__(self, cmd: str) -> None:
        self.cmd = cmd
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the app; closed by stop()
        self.proc = subprocess.Popen(
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped whole
        )

    def output(self, max_lines: int = 40) -> str:
        """The last ``max_lines`` lines the app printed (decoded leniently)."""
        with contextlib.suppress(OSError, ValueError):
            size = os.fstat(self._log.fileno()).st_size
            self._log.seek(max(0, size - OUTPUT_TAIL_BYTES))
            lines = self._log.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-max_lines:])
        return ""

    def exited(self) -> int | None:
        return self.proc.poll()

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, sig)

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM to the group, SIGKILL after ``grace`` seconds; idempotent."""
        self._signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self.proc.wait(grace)
        self._signal(signal.SIGKILL)  # whatever of the group outlived its leader
        self._log.close()


def start(cmd: str, against: str, timeout: float) -> App:
    """Start ``cmd`` and wait until the host and port of ``against`` accept connections (``timeout`` seconds);
    StartError (with the app's output) when it exits first or does not come up in time."""
    host, port = host_port(against)
    if accepts(host, port):
        raise StartError(
            f"something is already listening on {host}:{port}, so --start would test that instead of the app it"
            " starts; stop it, or drop --start to test it."
        )
    try:
        app = App(cmd)
    except OSError as exc:
        raise StartError(f"cannot start {cmd!r} ({exc.strerror}).") from None
    deadline = time.monotonic() + timeout
    while True:
        code = app.exited()
        if code is not None:
            output = app.output()
            app.stop()
            raise StartError(
                f"the app ({cmd}) exited with status {code} before {host}:{port} accepted connections.", output
            )
        if accepts(host, port):
            return app
        if time.monotonic() >= deadline:
            output = app.output()
            app.stop()
            raise StartError(
                f"the app ({cmd}) did not accept connections on {host}:{port} within {timeout:g} s"
                " (--start-timeout sets the limit).",
                output,
            )
        time.sleep(POLL_S)
