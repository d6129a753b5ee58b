"""What cloudflared's failures mean, one sentence each with what to do; and reading its log lines for them.

The marks are cloudflared's own log text (cmd/cloudflared/tunnel/quick_tunnel.go, the edge dialer and Go's
net errors), so a real cloudflared and the fake in tests/fakes/ are recognised the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from vapi_dev.tunnels.base import TunnelError


class StartFailed(TunnelError):
    """cloudflared ran but gave no tunnel; ``reason`` says what happened without the advice (auto's warning)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


INSTALL_HINT = (
    "install it (`brew install cloudflared`, or a release from "
    "https://github.com/cloudflare/cloudflared/releases) or pass --cloudflared-path PATH"
)
BOTH_WAYS = (
    "for a public URL, set NGROK_AUTHTOKEN (a free ngrok account) for ngrok, or fix cloudflared and pass "
    "--tunnel cloudflared (no account needed), or run your own tunnel and pass --public-url URL"
)
RATE_LIMITED_MARK = "429 Too Many Requests"
# Lines cloudflared logs when it cannot reach Cloudflare: the quick-tunnel request to api.trycloudflare.com
# failed (DNS, no route, a proxy), or the edge connections (QUIC/HTTP2 on port 7844) time out.
UNREACHABLE_MARKS = (
    "failed to request quick tunnel",
    "no such host",
    "context deadline exceeded",
    "network is unreachable",
    "no recent network activity",
    "failed to dial to edge",
    "unable to establish connection with cloudflare edge",
    "i/o timeout",
)
LOG_PREFIX = re.compile(r"^\S+\s+(?:DBG|INF|WRN|ERR|FTL)\s+")

RATE_LIMITED = (
    "Cloudflare refused a new quick tunnel (429 Too Many Requests, too many created from this address): "
    "wait a few minutes and try again, use ngrok (set NGROK_AUTHTOKEN), or pass --public-url URL."
)


def missing_binary(path: str | None) -> str:
    where = f"There is no cloudflared at {path}" if path else "cloudflared is not installed (not on PATH)"
    return f"{where}: {INSTALL_HINT}, or run your own tunnel and pass --public-url URL."


def cannot_run(path: str, why: str) -> str:
    if "ermission denied" in why:  # the file is there: what to do is make it runnable, not to install again
        return (
            f"Could not run cloudflared at {path} ({why}): make it executable (chmod +x {path}) "
            "or pass another --cloudflared-path."
        )
    return f"Could not run cloudflared at {path} ({why}): {INSTALL_HINT}."


def not_ready(seconds: float, last: str | None) -> str:
    text = (
        f"cloudflared did not connect to Cloudflare within {seconds:g} s (--tunnel-timeout sets this wait): "
        "check your internet connection, proxy or firewall (outbound port 7844), or pass --public-url URL."
    )
    return f"{text} Last cloudflared log line: {last}" if last else text


def unreachable(line: str | None) -> str:
    text = (
        "cloudflared cannot reach Cloudflare (api.trycloudflare.com, or its edge on port 7844): check your "
        "internet connection, DNS, proxy or firewall, use ngrok (set NGROK_AUTHTOKEN), or pass --public-url URL."
    )
    return f"{text} cloudflared said: {line}" if line else text


def exited(code: int | None, last: str | None) -> str:
    said = f": {last}" if last else ""
    return (
        f"cloudflared exited before the tunnel was up (exit code {code}){said} — check that "
        "--cloudflared-path points at a working cloudflared, or pass --public-url URL."
    )


def fallback(exc: TunnelError) -> str:
    """The warning when `auto` picked an installed cloudflared that failed: the run goes on, local only."""
    reason = exc.reason if isinstance(exc, StartFailed) else exc.message.rstrip(".")
    return f"No public URL (local only): cloudflared did not start ({reason}); {BOTH_WAYS}."


def gave_up(tries: int, local_url: str, last: str) -> str:
    return (
        f"Gave up restarting cloudflared after {tries} tries ({last.rstrip('.')}): vapi-dev goes on receiving "
        f"at {local_url} and forwarding to your app, without a public URL; restart vapi-dev, use ngrok (set "
        "NGROK_AUTHTOKEN), or pass --public-url URL."
    )


def message_of(line: str) -> str:
    """A log line without its timestamp and level."""
    return LOG_PREFIX.sub("", line)


def last_line(lines: Iterable[str]) -> str | None:
    """The last log line that says something (not a line of the URL banner's box)."""
    for line in reversed(list(lines)):
        message = message_of(line)
        if message and not message.startswith(("+", "|")):
            return line
    return None


def unreachable_line(lines: Iterable[str]) -> str | None:
    """The last line saying Cloudflare cannot be reached; lines about the local origin do not count."""
    for line in reversed(list(lines)):
        low = line.lower()
        if "origin" not in low and any(mark in low for mark in UNREACHABLE_MARKS):
            return line
    return None


def explain(lines: Iterable[str], *, code: int | None, timeout: float | None) -> StartFailed:
    """Why a start failed: cloudflared exited with ``code``, or was not ready after ``timeout`` seconds."""
    logs = list(lines)
    if any(RATE_LIMITED_MARK in line for line in logs):
        return StartFailed(RATE_LIMITED, "Cloudflare refused a new quick tunnel: 429 Too Many Requests")
    cut = unreachable_line(logs)
    if cut is not None:
        return StartFailed(unreachable(cut), f"it cannot reach Cloudflare: {message_of(cut)}")
    last = last_line(logs)
    said = f": {message_of(last)}" if last else ""
    if timeout is not None:
        return StartFailed(not_ready(timeout, last), f"it did not connect to Cloudflare within {timeout:g} s{said}")
    return StartFailed(exited(code, last), f"it exited with code {code}{said}")
