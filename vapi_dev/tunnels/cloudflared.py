"""The cloudflared provider: a Cloudflare quick tunnel (trycloudflare.com) run as a child process.

The public URL comes from the metrics server's ``/quicktunnel`` (the boxed banner on stderr is the
fallback); the tunnel is usable once ``/ready`` answers 200. Nothing is ever downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections import deque
from pathlib import Path

from vapi_dev.tunnels.base import Listener, TunnelConfig, TunnelError, TunnelInfo
from vapi_dev.tunnels.locate import upstream_url

PATH_ENV = "VAPI_DEV_CLOUDFLARED_PATH"
INSTALL_HINT = (
    "install it (`brew install cloudflared`, or a release from "
    "https://github.com/cloudflare/cloudflared/releases) or pass --cloudflared-path PATH"
)
NO_PUBLIC_URL_HINT = "install cloudflared for a free quick tunnel"
RATE_LIMITED_MARK = "429 Too Many Requests"
POLL_S = 0.1
STOP_GRACE_S = 3.0  # cloudflared waits up to --grace-period on SIGTERM; we do not wait that long

_BANNER_URL = re.compile(r"\|\s+(https?://[^\s|]+)\s+\|")
_LOG_PREFIX = re.compile(r"^\S+\s+(?:DBG|INF|WRN|ERR|FTL)\s+")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def resolve_cloudflared_path(cfg: TunnelConfig) -> tuple[str | None, bool]:
    """(path to cloudflared or None, whether the user chose it): --cloudflared-path, the env var, PATH."""
    for chosen in (cfg.cloudflared_path, os.environ.get(PATH_ENV)):
        if chosen:
            return str(Path(chosen).expanduser()), True
    return shutil.which("cloudflared"), False


def cloudflared_installed(cfg: TunnelConfig) -> bool:
    path, _ = resolve_cloudflared_path(cfg)
    return path is not None and os.path.isfile(path) and os.access(path, os.X_OK)


def missing_binary(path: str | None) -> str:
    where = f"There is no cloudflared at {path}" if path else "cloudflared is not installed (not on PATH)"
    return f"{where}: {INSTALL_HINT}, or run your own tunnel and pass --public-url URL."


def not_ready(seconds: float, last: str | None) -> str:
    text = (
        f"cloudflared did not connect to Cloudflare within {seconds:g} s (--tunnel-timeout sets this wait): "
        "check your internet connection, proxy or firewall (outbound port 7844), or pass --public-url URL."
    )
    return f"{text} Last cloudflared log line: {last}" if last else text


RATE_LIMITED = (
    "Cloudflare refused a new quick tunnel (429 Too Many Requests, too many created from this address): "
    "wait a few minutes and try again, use ngrok (set NGROK_AUTHTOKEN), or pass --public-url URL."
)


def exited(code: int | None, last: str | None) -> str:
    said = f": {last}" if last else ""
    return (
        f"cloudflared exited before the tunnel was up (exit code {code}){said} — check that "
        "--cloudflared-path points at a working cloudflared, or pass --public-url URL."
    )


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


class CloudflaredTunnel:
    """``cloudflared tunnel --url <receiver>``: one quick tunnel for the life of the run."""

    name = "cloudflared"

    def __init__(self, cfg: TunnelConfig) -> None:
        self._cfg = cfg
        self._path, self._chosen = resolve_cloudflared_path(cfg)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._logs: deque[str] = deque(maxlen=20)
        self._banner_url: str | None = None
        self._rate_limited = False
        self._listener: Listener | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def set_listener(self, cb: Listener) -> None:
        self._listener = cb  # no health watch yet: nothing is reported after start

    async def start(self, local_url: str) -> TunnelInfo | None:
        if not self._path or not os.path.isfile(self._path):
            raise TunnelError(missing_binary(self._path if self._chosen else None))
        metrics = f"127.0.0.1:{_free_port()}"
        args = ["tunnel", "--no-autoupdate", "--url", upstream_url(local_url), "--metrics", metrics]
        try:
            self._proc = await asyncio.create_subprocess_exec(
                self._path,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise TunnelError(
                f"Could not run cloudflared at {self._path} ({exc.strerror or exc}): {INSTALL_HINT}."
            ) from None
        self._reader = asyncio.create_task(self._read_stderr(), name="vapi-dev-cloudflared-log")
        try:
            public_url = await self._wait_ready(f"http://{metrics}")
        except BaseException:
            await self.stop()
            raise
        return TunnelInfo(public_url=public_url, provider=self.name, inspect_url=f"http://{metrics}/metrics")

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
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
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    # -- starting ----------------------------------------------------------------------------------

    async def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        stream = self._proc.stderr
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
            self._logs.append(line[:300])
            if RATE_LIMITED_MARK in line:
                self._rate_limited = True
            match = _BANNER_URL.search(line)
            if match and self._banner_url is None:
                self._banner_url = match.group(1)

    def _last_line(self) -> str | None:
        """The last log line that says something (not a line of the URL banner's box)."""
        for line in reversed(self._logs):
            message = _LOG_PREFIX.sub("", line)
            if message and not message.startswith(("+", "|")):
                return line
        return None

    async def _wait_ready(self, metrics: str) -> str:
        assert self._proc is not None
        timeout = self._cfg.startup_timeout
        deadline = time.monotonic() + timeout
        hostname: str | None = None
        while True:
            if self._rate_limited:
                raise TunnelError(RATE_LIMITED)
            if self._proc.returncode is not None:
                if self._reader is not None:
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(asyncio.shield(self._reader), 1)
                if self._rate_limited:
                    raise TunnelError(RATE_LIMITED)
                raise TunnelError(exited(self._proc.returncode, self._last_line()))
            if hostname is None:
                status, body = await asyncio.to_thread(_get, f"{metrics}/quicktunnel")
                if status == 200:
                    with contextlib.suppress(ValueError, AttributeError):
                        hostname = str(json.loads(body).get("hostname") or "") or None
            url = public_url_from(hostname) if hostname else self._banner_url
            if url:
                status, _ = await asyncio.to_thread(_get, f"{metrics}/ready")
                if status == 200:
                    return url
            if time.monotonic() >= deadline:
                raise TunnelError(not_ready(timeout, self._last_line()))
            await asyncio.sleep(POLL_S)
