"""One cloudflared process: ``cloudflared tunnel --no-autoupdate --url <receiver> --metrics <port>``, its
log (read continuously, the last lines kept), its metrics server (``/quicktunnel``, ``/ready``) and its end."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import signal
import socket
import time
import urllib.error
import urllib.request
from collections import deque

from vapi_dev.tunnels import cloudflared_errors as text
from vapi_dev.tunnels.base import TunnelError, forget_child, track_child

POLL_S = 0.1
SHUTDOWN_MARK = "Initiating graceful shutdown"  # cloudflared's log line on SIGINT/SIGTERM (tunnel/signal.go)
STOPPED_CODES = (0, -signal.SIGINT, -signal.SIGTERM)
STOP_GRACE_S = 3.0  # cloudflared waits up to --grace-period on SIGTERM; we do not wait that long

_BANNER_URL = re.compile(r"\|\s+(https?://[^\s|]+)\s+\|")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def public_url_from(hostname: str) -> str:
    """``https://host`` for a real quick tunnel; plain http for a loopback stand-in (tests' fake edge)."""
    host = hostname.strip().rstrip("/")
    if "://" in host:
        return host
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(bare.strip("[]")).is_loopback:
            return f"http://{host}"
    return f"https://{host}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, bytes]:
    """Blocking GET on the local metrics server (no proxy); (status, body), or (0, b"") when unreachable."""
    try:
        with _NO_PROXY.open(url, timeout=2) as resp:
            return int(resp.status), bytes(resp.read(65536))
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except (OSError, ValueError):
        return 0, b""


class Agent:
    """One cloudflared process: one quick tunnel, its metrics server and its log."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.metrics = f"http://127.0.0.1:{_free_port()}"
        self.proc: asyncio.subprocess.Process | None = None
        self.logs: deque[str] = deque(maxlen=20)
        self._reader: asyncio.Task[None] | None = None
        self._banner_url: str | None = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def launch(self, upstream: str) -> None:
        args = ["tunnel", "--no-autoupdate", "--url", upstream, "--metrics", self.metrics.split("//", 1)[1]]
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.path,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise TunnelError(text.cannot_run(self.path, exc.strerror or str(exc))) from None
        track_child(self.proc)
        self._reader = asyncio.create_task(self._read_stderr(), name="vapi-dev-cloudflared-log")

    async def _read_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        stream = self.proc.stderr
        while True:
            try:
                raw = await stream.readline()
            except (ValueError, asyncio.LimitOverrunError):
                continue  # an over-long line: skip it
            if not raw:
                return
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            self.logs.append(line[:300])
            match = _banner_url(line)
            if match and self._banner_url is None:
                self._banner_url = match

    async def wait_ready(self, timeout: float) -> str:
        """The public URL once ``/ready`` answers 200; TunnelError (one sentence) when that cannot be."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        hostname: str | None = None
        while True:
            if any(text.RATE_LIMITED_MARK in line for line in self.logs):
                raise text.explain(self.logs, code=None, timeout=None)
            if self.proc.returncode is not None:
                if self._reader is not None:  # let the last lines in before reading them
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._reader), 1)
                raise text.explain(self.logs, code=self.proc.returncode, timeout=None)
            if hostname is None:
                status, body = await asyncio.to_thread(_get, f"{self.metrics}/quicktunnel")
                if status == 200:
                    with contextlib.suppress(ValueError, AttributeError):
                        hostname = str(json.loads(body).get("hostname") or "") or None
            url = public_url_from(hostname) if hostname else self._banner_url
            if url and await self.ready():
                return url
            if time.monotonic() >= deadline:
                raise text.explain(self.logs, code=None, timeout=timeout)
            await asyncio.sleep(POLL_S)

    async def ready(self) -> bool:
        status, _ = await asyncio.to_thread(_get, f"{self.metrics}/ready")
        return status == 200

    def port_taken(self) -> bool:
        """Whether it failed because its metrics port was taken meanwhile (Go's and Python's wording)."""
        return any("address already in use" in line.lower() for line in self.logs)

    def told_to_stop(self) -> bool:
        """Whether something outside vapi-dev stopped cloudflared (a signal): it logs a graceful shutdown, or
        it exited by SIGINT/SIGTERM or with code 0 (its exit after a graceful shutdown)."""
        code = self.proc.returncode if self.proc is not None else None
        return code in STOPPED_CODES or any(SHUTDOWN_MARK in line for line in self.logs)

    async def exit_reason(self) -> str:
        if self._reader is not None:  # let its last lines in before quoting them
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 1)
        code = self.proc.returncode if self.proc is not None else None
        last = text.last_line(self.logs)
        return f"cloudflared exited (exit code {code})" + (f": {text.message_of(last)}" if last else "")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(proc.wait(), 5)
        if proc is not None and proc.returncode is not None:
            forget_child(proc)
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader


def _banner_url(line: str) -> str | None:
    """The URL inside the boxed banner (``|  https://….trycloudflare.com  |``)."""
    match = _BANNER_URL.search(line)
    return match.group(1) if match else None
