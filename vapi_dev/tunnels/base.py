"""The tunnel seam: config, result, error type and the protocol every provider implements."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from vapi_dev.errors import VapiDevError
from vapi_dev.exchange import Notice, TunnelChanged

PROVIDERS = ("auto", "ngrok", "cloudflared", "manual", "none")

TOKEN_URL = "https://dashboard.ngrok.com/get-started/your-authtoken"

Listener = Callable[[TunnelChanged | Notice], None]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TunnelConfig:
    """What the user asked for; built by the CLI from --tunnel, --public-url and the ngrok options."""

    provider: str = "auto"  # "auto" | "ngrok" | "cloudflared" | "manual" | "none"
    public_url: str | None = None
    ngrok_authtoken: str | None = None
    domain: str | None = None
    region: str | None = None
    ngrok_path: str | None = None
    ngrok_config_path: str | None = None  # tests pass a temp file; None → user's default
    cloudflared_path: str | None = None  # None → VAPI_DEV_CLOUDFLARED_PATH, else PATH
    startup_timeout: float = 15.0


@dataclass(frozen=True)
class TunnelInfo:
    """A live public URL and where it came from."""

    public_url: str
    provider: str
    inspect_url: str | None = None


class TunnelError(VapiDevError):
    """A tunnel could not be set up; ``message`` is one sentence saying what to do, never a secret."""


class Tunnel(Protocol):
    """One provider. ``start`` and ``stop`` run on the event loop; listeners are called there too."""

    @property
    def name(self) -> str: ...

    async def start(self, local_url: str) -> TunnelInfo | None: ...

    async def stop(self) -> None: ...

    def set_listener(self, cb: Listener) -> None: ...


def validate_public_url(url: str) -> str:
    """Return ``url`` without a trailing slash, or raise TunnelError when it is not an http(s) URL."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TunnelError(
            f"--public-url must be an http(s) URL such as https://abc.example.com, not {text!r}: "
            "pass the public address of the tunnel you run yourself."
        )
    return text.rstrip("/")


# The agents (cloudflared) this process runs: killed by ``kill_children`` when a second Ctrl-C or SIGTERM
# ends vapi-dev at once (os._exit), so no agent is left running, adopted by init. Process objects, not pids:
# one that has exited (returncode set) is skipped, so a pid the system has given to another program since is
# never signalled.
_children: set[asyncio.subprocess.Process] = set()


def track_child(proc: asyncio.subprocess.Process) -> None:
    _children.add(proc)


def forget_child(proc: asyncio.subprocess.Process) -> None:
    _children.discard(proc)


def kill_children() -> None:
    """SIGKILL every tracked agent still running; synchronous, for the last moment before os._exit."""
    for proc in list(_children):
        if proc.returncode is None:
            with contextlib.suppress(OSError):
                os.kill(proc.pid, signal.SIGKILL)
    _children.clear()
