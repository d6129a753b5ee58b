"""Turning ngrok/pyngrok failures into one clear sentence each (tunnels.md §6.4); never echoing a token."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from vapi_dev.redact import mask_tokens
from vapi_dev.tunnels.base import TOKEN_URL

NO_TOKEN = (
    f"ngrok needs your free account's auth token: copy it from {TOKEN_URL} and run "
    "`export NGROK_AUTHTOKEN=…` (or pass --ngrok-authtoken), or run your own tunnel and pass --public-url URL."
)
NO_TOKEN_NOTICE = (
    "No public URL (local only): to get one, copy your ngrok auth token from "
    f"{TOKEN_URL} and run `export NGROK_AUTHTOKEN=…`; or install cloudflared (no account needed) for "
    "--tunnel cloudflared; or run your own tunnel and pass --public-url URL."
)
INVALID_TOKEN = (
    "ngrok rejected the auth token (mistyped, malformed or revoked): copy it again from "
    f"{TOKEN_URL} and set NGROK_AUTHTOKEN or --ngrok-authtoken."
)
DOWNLOAD_FAILED = (
    "Couldn't download the ngrok agent (no internet, or a proxy in the way?): install ngrok yourself and "
    "pass --ngrok-path PATH (or set VAPI_DEV_NGROK_PATH), or run your own tunnel and pass --public-url URL."
)
OFFLINE = (
    "The ngrok agent started but can't reach ngrok's servers (connect.ngrok-agent.com:443): check your "
    "internet connection, proxy or firewall, or run your own tunnel and pass --public-url URL."
)
SESSION_LIMIT = (
    "Your ngrok account already has the maximum number of agents online (free plan: 3): stop other "
    "ngrok or vapi-dev processes (see https://dashboard.ngrok.com/agents) and try again."
)
ENDPOINT_LIMIT = (
    "Your ngrok account has reached its limit of online endpoints (free plan: 3): stop other ngrok "
    "tunnels (see https://dashboard.ngrok.com/endpoints) and try again."
)
WEB_BUSY = (
    "ngrok's inspector address is already in use: remove `web_addr` from your ngrok config file or free "
    "that port, then try again."
)


def already_online(domain: str | None) -> str:
    what = f"https://{domain}" if domain else "This ngrok endpoint"
    return f"{what} is already online elsewhere (another vapi-dev or ngrok?): stop it, or choose another --domain."


def too_old(path: str) -> str:
    return (
        f"The ngrok agent at {path} is too old for vapi-dev: run `{path} update`, "
        "or drop --ngrok-path to use a current agent."
    )


def not_an_agent(path: str) -> str:
    return (
        f"The program at {path} exited without behaving like an ngrok agent: point --ngrok-path "
        "(or VAPI_DEV_NGROK_PATH) at a real ngrok v3 binary, or leave it out."
    )


def missing_binary(path: str) -> str:
    return (
        f"There is no ngrok agent at {path}: check --ngrok-path (or VAPI_DEV_NGROK_PATH), "
        "or leave it out to let vapi-dev download one."
    )


def start_timeout(seconds: float, lines: Iterable[str], secrets: Sequence[str | None]) -> str:
    tail = " | ".join(mask_tokens(line, secrets) for line in list(lines)[-3:])
    text = (
        f"ngrok did not start within {seconds:g} s: check your network, or run your own tunnel and "
        "pass --public-url URL."
    )
    return f"{text} Last agent log lines: {tail}" if tail else text


def ngrok_code(exc: BaseException) -> str | None:
    """The ERR_NGROK_nnn code from any pyngrok exception (the HTTP error keeps it only in ``.body``)."""
    parts = (str(exc), getattr(exc, "ngrok_error", None), getattr(exc, "body", None))
    match = re.search(r"ERR_NGROK_\d+", " ".join(str(p) for p in parts if p))
    return match.group(0) if match else None


def looks_too_old(exc: BaseException) -> bool:
    """An agent without /api/endpoints: a 404 on the endpoint API, or startup never became healthy."""
    if getattr(exc, "status_code", None) == 404:
        return True
    unable = "unable to start" in str(exc) and not getattr(exc, "ngrok_error", None)
    return unable and bool(getattr(exc, "ngrok_logs", None))


def explain(exc: BaseException, *, domain: str | None, ngrok_path: str, secrets: Sequence[str | None]) -> str:
    """One user-facing sentence for a pyngrok failure. The agent's own text is never shown unredacted."""
    kind = type(exc).__name__
    code = ngrok_code(exc)
    if kind == "PyngrokNgrokInstallError":
        return DOWNLOAD_FAILED
    if code == "ERR_NGROK_4018":
        return NO_TOKEN
    if code in ("ERR_NGROK_105", "ERR_NGROK_107"):
        return INVALID_TOKEN
    if code == "ERR_NGROK_108":
        return SESSION_LIMIT
    if code == "ERR_NGROK_324":
        return ENDPOINT_LIMIT
    if code == "ERR_NGROK_334":
        return already_online(domain)
    raw = f"{getattr(exc, 'ngrok_error', None) or ''} {exc}"
    if "failed to dial ngrok server" in raw or "failed to reconnect session" in raw:
        return OFFLINE
    if "address already in use" in raw:
        return WEB_BUSY
    if "binary was not found" in raw:
        return missing_binary(ngrok_path)
    if "unable to start" in raw and not getattr(exc, "ngrok_logs", None):
        return not_an_agent(ngrok_path)
    if looks_too_old(exc):
        return too_old(ngrok_path)
    detail = mask_tokens(" ".join(raw.split()), secrets)[:200]
    return (
        f"ngrok failed to start ({detail}): check your ngrok setup, or run your own tunnel and pass --public-url URL."
    )
