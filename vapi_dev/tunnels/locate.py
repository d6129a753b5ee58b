"""Finding what ngrok needs before it runs: the agent binary, the auth token, the upstream address."""

from __future__ import annotations

import os
import platform
import re
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from vapi_dev.config import bracket_host
from vapi_dev.tunnels.base import TunnelConfig

PATH_ENV = "VAPI_DEV_NGROK_PATH"
TOKEN_ENV = "NGROK_AUTHTOKEN"

# `authtoken:` at top level (v2 files) or inside the `agent:` block (v3 files); comments never match.
_TOKEN_LINE = re.compile(r"^\s*authtoken:\s*[\"']?([^\"'\s#]+)", re.MULTILINE)


def default_ngrok_dir() -> Path:
    """Where the agent keeps ngrok.yml (and where pyngrok installs the binary), as pyngrok computes it."""
    home = Path.home()
    system = platform.system().lower()
    if system.startswith("darwin"):
        return home / "Library" / "Application Support" / "ngrok"
    if system.startswith(("windows", "cygwin", "ming")):
        return home / "AppData" / "Local" / "ngrok"
    return Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "ngrok"


def binary_name() -> str:
    return "ngrok.exe" if os.name == "nt" else "ngrok"


def config_candidates(cfg: TunnelConfig) -> list[Path]:
    """The config file the agent will read: the one given, else the default and the legacy v2 location."""
    if cfg.ngrok_config_path:
        return [Path(cfg.ngrok_config_path).expanduser()]
    return [default_ngrok_dir() / "ngrok.yml", Path.home() / ".ngrok2" / "ngrok.yml"]


def token_in_file(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    match = _TOKEN_LINE.search(text)
    return match.group(1) if match else None


def find_token(cfg: TunnelConfig) -> tuple[str | None, Path | None]:
    """(token, config file it came from). Order: --ngrok-authtoken, NGROK_AUTHTOKEN, the ngrok config."""
    if cfg.ngrok_authtoken:
        return cfg.ngrok_authtoken, None
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV], None
    for path in config_candidates(cfg):
        token = token_in_file(path)
        if token:
            return token, path
    return None, None


def is_pyngrok_shim(path: str) -> bool:
    """pyngrok installs a Python console script named `ngrok` that downloads the agent; it is not one."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(b"#!") and b"pyngrok" in head


def resolve_ngrok_path(cfg: TunnelConfig) -> tuple[str, bool]:
    """(path to the agent, whether the user chose it). A chosen path is never downloaded into."""
    for chosen in (cfg.ngrok_path, os.environ.get(PATH_ENV), os.environ.get("PYNGROK_NGROK_PATH")):
        if chosen:
            return str(Path(chosen).expanduser()), True
    managed = default_ngrok_dir() / binary_name()
    if managed.exists():
        return str(managed), False
    found = shutil.which("ngrok")
    if found and not is_pyngrok_shim(found):
        return found, False
    return str(managed), False


def upstream_url(local_url: str) -> str:
    """The receiver's address for the agent: always an IP, since `localhost` may resolve to ::1 first."""
    parts = urlsplit(local_url if "://" in local_url else f"http://{local_url}")
    scheme = parts.scheme or "http"
    host = parts.hostname or "127.0.0.1"
    if host in ("localhost", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{bracket_host(host)}:{port}"


def normalise_domain(domain: str | None) -> str | None:
    """Accept `abc.ngrok-free.dev`, `https://abc.ngrok-free.dev/` and the like; return the bare host."""
    if not domain:
        return None
    text = domain.strip()
    host = urlsplit(text if "://" in text else f"https://{text}").hostname
    return host or None
