"""The frozen Config of a listen run, and parsing of forward targets ("3000", "localhost:3000/hook", URLs)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

if TYPE_CHECKING:  # the Config only carries these; importing them would tie config.py to every folder
    from vapi_dev.tunnels.base import TunnelConfig
    from vapi_dev.vapi.auth import AuthConfig
    from vapi_dev.wiring.hook import WiringConfig

from vapi_dev.errors import ExitStatus, VapiDevError

DEFAULT_TARGET = "http://localhost:3000"
DEFAULT_PORT = 4242
DEFAULT_HOST = "127.0.0.1"


def bracket_host(host: str) -> str:
    """A host as it stands in a URL or ``host:port``: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host else host


def data_file(name: str, kind: Literal["data", "state"] = "data") -> Path:
    """``$VAPI_DEV_HOME/<name>``, else ``name`` in the platform's user data (or state) directory."""
    home = os.environ.get("VAPI_DEV_HOME")
    if home:
        return Path(home).expanduser() / name
    import platformdirs  # only when there is no VAPI_DEV_HOME

    folder = platformdirs.user_state_dir if kind == "state" else platformdirs.user_data_dir
    return Path(folder("vapi-dev")) / name


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """``"1MB"``, ``"512kB"``, ``"2MiB"`` or a number of bytes, as bytes (kB/MB/GB are powers of 1000, as
    vapi-dev prints sizes; KiB/MiB/GiB powers of 1024). Raises ValueError with a sentence saying so."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a size; try 1MB, 512kB or a number of bytes")
    unit = (m.group(2) or "").lower()
    unit = unit[:-1] if unit.endswith("b") and unit != "b" else unit
    return int(float(m.group(1)) * _UNITS[unit])


class TargetError(VapiDevError, ValueError):
    """A forward target that cannot be understood; the message says what form is expected."""

    exit_status = ExitStatus.USAGE


@dataclass(frozen=True)
class Target:
    scheme: str  # "http" | "https"
    host: str
    port: int
    path: str  # "" or a path starting with "/" and not ending with "/"
    query: str = ""

    @property
    def netloc(self) -> str:
        host = bracket_host(self.host)
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.path or ''}" + (f"?{self.query}" if self.query else "")

    def url_for(self, path: str, query: str) -> str:
        """Map an incoming path and query onto the target: target path + incoming path, queries joined."""
        base = self.path
        if path in ("", "/"):
            full = base or "/"
        else:
            full = base + path if path.startswith("/") else f"{base}/{path}"
        q = "&".join(p for p in (self.query, query) if p)
        return f"{self.scheme}://{self.netloc}{full}" + (f"?{q}" if q else "")


_HOSTPORT = re.compile(r"^(?P<host>\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]*)(?::(?P<port>[^/]*))?(?P<path>/.*)?$")


def parse_target(text: str) -> Target:
    """Parse "3000", ":3000", "localhost:3000", "localhost:3000/webhook" or an http(s) URL."""
    raw = text.strip()
    if not raw:
        raise TargetError("the forward target is empty; give a port (3000) or a URL (http://localhost:3000)")
    if raw.isdigit():
        raw = f"localhost:{raw}"
    elif raw.startswith(":") and raw[1:].split("/", 1)[0].isdigit():
        raw = "localhost" + raw
    if "://" in raw:
        parts = urlsplit(raw)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise TargetError(f"cannot forward to {text!r}: only http:// and https:// targets are supported")
        host = parts.hostname or ""
        try:
            port = parts.port
        except ValueError:
            raise TargetError(f"{text!r} has an invalid port; use a number from 1 to 65535") from None
        path, query = parts.path, parts.query
    else:
        m = _HOSTPORT.match(raw)
        if not m:
            raise TargetError(
                f"cannot understand forward target {text!r}; try 3000, localhost:3000/webhook "
                "or http://127.0.0.1:3000/api"
            )
        scheme, host = "http", m.group("host").strip("[]")
        port_text = m.group("port")
        if port_text is not None and not port_text.isdigit():
            raise TargetError(f"{text!r} has an invalid port {port_text!r}; use a number from 1 to 65535")
        port = int(port_text) if port_text else None
        path, query = (m.group("path") or ""), ""
        if "?" in path:
            path, query = path.split("?", 1)
    if not host:
        raise TargetError(f"{text!r} has no host; try localhost:3000")
    if port is None:
        port = 443 if scheme == "https" else 80
    if not 0 < port < 65536:
        raise TargetError(f"{text!r} has an invalid port {port}; use a number from 1 to 65535")
    return Target(scheme, host, port, path.rstrip("/"), query)


@dataclass(frozen=True)
class Config:
    """Everything a listen run needs, validated by the CLI."""

    forward_to: Target = field(default_factory=lambda: parse_target(DEFAULT_TARGET))
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    timeout: float | None = None  # overrides every per-type deadline
    insecure: bool = False
    verbose: bool = False
    full: bool = False
    json: bool = False
    color: bool | None = None  # None: decide from the terminal and NO_COLOR
    show_secrets: bool = False
    fallback: bool = False
    events: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()
    call: str | None = None
    all: bool = False
    journal: Path | None = None
    keep: int = 10_000
    tunnel: TunnelConfig | None = None
    auth: AuthConfig | None = None
    wiring: WiringConfig | None = None
    org: bool = False  # print how to point the organisation's server URL at the tunnel
    max_body: int = 256 * 1024 * 1024
    # -- limits against hostile or broken callers (see `listen --help`, "Limits") ----------------
    max_connections: int = 512  # beyond this many open connections, new ones get 503
    max_headers: int = 100  # more request header fields: 431
    head_timeout: float = 10.0  # a request line and headers must arrive within this, else 408
    body_timeout: float = 30.0  # a request body may stall this long at most, else 408
    idle_timeout: float = 60.0  # an idle keep-alive connection is closed after this
    journal_body_limit: int = 1_000_000  # bytes of each body the journal keeps (the real size is recorded)
    journal_max_size: int = 500_000_000  # the journal's total size; the oldest rows go first
