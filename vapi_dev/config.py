"""The frozen Config of a listen run, and parsing of forward targets ("3000", "localhost:3000/hook", URLs)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

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
        raise ValueError(f"{_said(text)} is not a size; try 1MB, 512kB or a number of bytes")
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
    path: str  # "" or a path starting with "/", as typed: a trailing "/" is kept (Flask answers 308 without it)
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
        """Map an incoming path and query onto the target: target path + incoming path, queries joined.

        ``/`` is the target path itself (with its trailing slash, if it has one); a target ending in ``/``
        and an incoming path starting with one share that slash: ``/api/webhook/`` + ``/tools`` is
        ``/api/webhook/tools``."""
        base = self.path
        if path in ("", "/"):
            full = base or "/"
        elif base.endswith("/"):
            full = base + (path[1:] if path.startswith("/") else path)
        else:
            full = base + path if path.startswith("/") else f"{base}/{path}"
        q = "&".join(p for p in (self.query, query) if p)
        return f"{self.scheme}://{self.netloc}{full}" + (f"?{q}" if q else "")


TARGET_FORMS = "try 3000, 3000/webhook, localhost:3000/webhook or http://127.0.0.1:3000/api"
_PORT = re.compile(r"[0-9]{1,5}")
_NAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_NUMERIC = re.compile(r"[0-9.]+")
_IPV4 = re.compile(
    r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


def _said(text: str, limit: int = 80) -> str:
    """``text`` quoted for an error line (controls escaped by repr), cut: it can be anything typed."""
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _port(text: str, port: str) -> int:
    """A port: ASCII digits only, 1 to 65535 (leading zeros allowed)."""
    if not port:
        raise TargetError(f"{_said(text)} has ':' but no port after it; use a number from 1 to 65535")
    if not _PORT.fullmatch(port) or not 0 < int(port) < 65536:
        raise TargetError(f"{_said(text)} has an invalid port {_said(port)}; use a number from 1 to 65535")
    return int(port)


def _host(text: str, host: str, scheme: str | None) -> str:
    """A host: a name (letters, digits, '-', '_' in dot-separated labels, at least one letter or '-'/'_'),
    a whole dotted IPv4 address, or an IPv6 address in brackets (given here without them)."""
    if host.startswith("["):
        import ipaddress  # only for a bracketed host, as in cli/listen.py: `--help` stays light

        inner = host[1:-1] if host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise TargetError(
                f"{_said(text)} has an invalid IPv6 address {_said(host)}; write it like [::1]:3000"
            ) from None
        return inner
    if not host:
        raise TargetError(f"{_said(text)} has no host; {TARGET_FORMS}")
    if ":" in host:
        raise TargetError(
            f"{_said(text)} is ambiguous: it has more than one ':' (an IPv6 address goes in brackets: [::1]:3000)"
        )
    if _NUMERIC.fullmatch(host):
        if _IPV4.fullmatch(host):
            return host
        hint = f"; to forward to port {host}, write http://localhost:{host}" if _PORT.fullmatch(host) else ""
        what = "it" if host == text.strip() else _said(host)
        raise TargetError(
            f"{_said(text)} is ambiguous: {what} is neither a port (3000) nor a whole IPv4 address (127.0.0.1){hint}"
        )
    if scheme is None and host.lower() in ("http", "https"):
        raise TargetError(f"{_said(text)} looks like a URL with a broken scheme; write {host.lower()}://HOST:PORT/PATH")
    if not _NAME.fullmatch(host):
        raise TargetError(f"{_said(text)} has an invalid host {_said(host)}; {TARGET_FORMS}")
    return host


def parse_target(text: str) -> Target:
    """Parse a forward target; anything that could be read two ways is a TargetError, never a guess.

    ``[http(s)://][HOST][:PORT][/PATH][?QUERY]``. Without a scheme, a leading number is a port on
    localhost (``3000``, ``3000/webhook``, ``:3000/webhook``) and the scheme is http. A host made only of
    digits and dots must be a whole IPv4 address (``3000.5``, ``1.2.3``, ``http://3000/x`` are errors); a
    port is 1 to 65535 in ASCII digits (``localhost:abc``, ``localhost:``, ``70000`` are errors). The
    target is printable ASCII without spaces (percent-encode the rest) and has no ``#fragment`` or
    ``user@``. The path is kept as typed, a trailing ``/`` included.
    """
    raw = text.strip()
    if not raw:
        raise TargetError(f"the forward target is empty; {TARGET_FORMS}")
    if any(not (" " < c < "\x7f") for c in raw):
        raise TargetError(
            f"{_said(text)} has a space, a control or a non-ASCII character; percent-encode it (%20, %C3%A9)"
        )
    scheme_text, sep, rest = raw.partition("://")
    scheme: str | None = None
    if sep:
        scheme = scheme_text.lower()
        if scheme not in ("http", "https"):
            what = "is not a URL" if not _SCHEME.fullmatch(scheme_text) else "is not http:// or https://"
            raise TargetError(f"cannot forward to {_said(text)}: it {what}; only http:// and https:// targets work")
    else:
        rest = raw
    if "#" in rest:
        raise TargetError(f"{_said(text)} has a #fragment, which is never sent over HTTP; leave it out")
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    path, _, query = tail.partition("?")
    if "@" in authority:
        # not quoted: the credentials would land in a terminal or a CI log
        raise TargetError(
            "the forward target has user:password@ credentials, which vapi-dev does not send; leave them out"
        )
    port: int | None = None
    port_text: str | None
    if scheme is None and authority.isascii() and authority.isdigit():  # "3000", "3000/webhook": localhost
        host, port = "localhost", _port(text, authority)
    else:
        if authority.startswith("["):
            end = authority.find("]") + 1 or len(authority)
            host_text, port_text = authority[:end], authority[end:]
            if port_text and not port_text.startswith(":"):
                raise TargetError(f"{_said(text)} has something after the IPv6 address that is not :PORT")
            port_text = port_text[1:] if port_text else None
        elif authority.count(":") == 1:
            host_text, _, port_text = authority.partition(":")
        else:
            host_text, port_text = authority, None
        if scheme is None and not host_text and port_text is not None:  # ":3000": a port on localhost
            host_text = "localhost"
        host = _host(text, host_text, scheme)
        if port_text is not None:
            port = _port(text, port_text)
    if scheme is None:
        scheme = "http"
    if port is None:
        port = 443 if scheme == "https" else 80
    return Target(scheme, host, port, path, query)


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
