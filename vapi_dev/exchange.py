"""The Exchange record (one request/reply pair) and the events that sinks receive."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Headers = list[tuple[str, str]]

DEFAULT_DEADLINE_S = 20.0  # Vapi's server.timeoutSeconds default: how long Vapi waits for a reply

_counter = itertools.count(1)
_run_prefix = os.urandom(3).hex()  # ids stay unique across runs in the journal


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (any case), or None."""
    wanted = name.lower()
    for key, value in headers:
        if key.lower() == wanted:
            return value
    return None


def parse_json(body: bytes | str) -> Any:
    """``body`` parsed as JSON, or None when it is not JSON (or not UTF-8), or is valid JSON nested deeper
    than the parser goes (about 1,000 levels): such a body is still forwarded, shown and kept as bytes."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def new_exchange_id() -> str:
    """Short, unique within a run, sortable: ``ex_<run>_<n>``."""
    return f"ex_{_run_prefix}_{next(_counter):06d}"


@dataclass(frozen=True)
class Problem:
    """A verdict about an exchange (reply-contract violation, slow reply, …)."""

    level: Literal["error", "warning"]
    code: str  # stable machine-readable id, e.g. "tool-calls.results-not-array"
    message: str  # one human sentence

    def to_json(self) -> dict[str, str]:
        return {"level": self.level, "code": self.code, "message": self.message}


@dataclass(frozen=True)
class AuthResult:
    """Outcome of verifying a request's credentials (None on Exchange when no auth is configured)."""

    method: str  # "secret" | "bearer" | "hmac"
    ok: bool
    reason: str = ""  # why it failed, never containing a secret value

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "ok": self.ok, "reason": self.reason}


@dataclass
class Exchange:
    """One request Vapi (or anyone) sent to the receiver, and what came back.

    Created by the receiver when a request has been read; completed by the forwarder. Sinks
    only read it. ``started`` and ``finished`` are ``time.monotonic()`` values.
    """

    id: str
    received_at: float  # wall clock, epoch seconds
    started: float  # monotonic
    method: str
    path: str  # incoming path, e.g. "/tools"
    query: str  # incoming raw query string without "?", may be ""
    headers: Headers  # incoming request headers, as received (forwarded untouched)
    body: bytes  # raw request body, exactly as received (its first part only when request_truncated)
    payload: Any = None  # parsed JSON body, or None when the body is not JSON
    message_type: str | None = None  # Vapi message.type, normalised ('transcript[…]' → 'transcript'); None = plain HTTP
    call_id: str | None = None
    reply_needed: bool = False
    deadline_s: float = DEFAULT_DEADLINE_S
    forward_url: str = ""
    request_bytes: int = -1  # the body's real size (-1: len(body), set in __post_init__)
    request_truncated: bool = False  # body holds only the first part (a streamed upload, or a journal cut)
    # -- reply side -------------------------------------------------------------------------
    status: int | None = None
    response_headers: Headers = field(default_factory=list)
    response_body: bytes = b""  # captured copy (may be truncated, see response_truncated)
    response_bytes: int = 0  # how many body bytes were relayed
    response_truncated: bool = False
    streamed: bool = False
    first_byte: float | None = None  # monotonic time of the app's reply headers
    finished: float | None = None  # monotonic
    error: str | None = None  # human sentence when the forward failed
    error_kind: str | None = None  # "unreachable" | "timeout" | "reset" | "tls" | "auth" | "internal"
    fallback: bool = False  # True when vapi-dev answered instead of the app
    # -- verdicts ----------------------------------------------------------------------------
    auth: AuthResult | None = None
    problems: list[Problem] = field(default_factory=list)
    # (body it was parsed from, result): not an init field, so dataclasses.replace() starts afresh
    _reply_parsed: tuple[bytes, Any] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.request_bytes < 0:
            self.request_bytes = len(self.body)

    @classmethod
    def begin(cls, method: str, path: str, query: str, headers: Headers, body: bytes) -> Exchange:
        return cls(
            id=new_exchange_id(),
            received_at=time.time(),
            started=time.monotonic(),
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
        )

    @property
    def duration_ms(self) -> float | None:
        if self.finished is None:
            return None
        return (self.finished - self.started) * 1000.0

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def record_reply(self, status: int, headers: Headers, body: bytes) -> None:
        """Fill in the reply side with a whole reply (vapi-dev's own answer: an error, a refusal, a fallback)."""
        self.status = status
        self.response_headers = list(headers)
        self.response_body = body
        self.response_bytes = len(body)

    def response_json(self) -> Any:
        """The reply body parsed as JSON, or None; parsed once per body (checks and every sink ask)."""
        body = self.response_body
        if not body or self.response_truncated:
            return None
        cached = self._reply_parsed
        if cached is not None and cached[0] is body:
            return cached[1]
        parsed = parse_json(body)
        self._reply_parsed = (body, parsed)
        return parsed


# -- events handed to sinks -------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The receiver is listening (and the tunnel is up, or there is none)."""

    local_url: str
    forward_to: str
    public_url: str | None
    tunnel: str  # provider name: "none" | "manual" | "ngrok"
    inspect_url: str | None = None
    note: str | None = None  # why there is no public URL, or a self-check result


@dataclass(frozen=True)
class TunnelChanged:
    """The public URL was lost, or restored (perhaps with a new URL)."""

    public_url: str | None
    up: bool
    reason: str = ""


@dataclass(frozen=True)
class Pending:
    """A reply-needed exchange is still waiting for the app (emitted once, after ~1 s)."""

    exchange: Exchange


@dataclass(frozen=True)
class Finished:
    """An exchange is complete: reply relayed, or failed."""

    exchange: Exchange


@dataclass(frozen=True)
class Notice:
    """A line of information for the user, not tied to one exchange."""

    level: Literal["info", "warning", "error"]
    text: str


Event = Ready | TunnelChanged | Pending | Finished | Notice


class Sink(Protocol):
    """Consumes events. ``emit`` is called on the event loop and must return at once."""

    def emit(self, event: Event) -> None: ...

    async def aclose(self) -> None:
        """Flush and stop; called once at shutdown."""
        ...
