"""Differential test of the relay: every request is sent twice over raw sockets, once straight to a raw
app and once through vapi-dev, and what the caller gets (and what the app gets) must be the same,
apart from the hop-by-hop headers and the X-Forwarded-* vapi-dev adds.

The app answers each request by a seeded random "reply plan" (status, reason, framing, body, headers,
how the bytes are split over TCP writes); the caller's side is seeded too (method, target, body,
framing, headers). Fixed seeds keep every run the same.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import string
from dataclasses import dataclass, field

import pytest

from tests.support.listener import Listener, running_listener
from tests.support.raw_http import connect, raw_app

Headers = list[tuple[str, str]]

SEEDS = (3, 14, 15, 92, 65, 35)
CASES_PER_SEED = 25  # 150 cases in all
CASE_TIMEOUT_S = 10.0
MB = 1024 * 1024

# Connection-specific fields (RFC 9110 §7.6.1) and the framing fields recomputed on every hop.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
        "content-length",
    }
)
# What vapi-dev may change on the way to the app besides the hop-by-hop fields.
REQUEST_REWRITTEN = frozenset({"host", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"})
CASE_HEADER = "X-Diff-Case"
NO_BODY = frozenset({204, 304})

STATUSES = (
    (200, "OK"),
    (201, "Created"),
    (204, "No Content"),
    (301, "Moved Permanently"),
    (304, "Not Modified"),
    (400, "Bad Request"),
    (404, "Not Found"),
    (418, "I'm a teapot"),
    (500, "Internal Server Error"),
    (503, "Service Unavailable"),
    (200, "Totally Fine"),
    (404, "nope,  not   here"),
    (299, "Custom Status"),
    (599, "Caf\xe9 Failure"),
    (200, "ok"),
    (299, ""),
    (200, ""),
)
CONTENT_TYPES = (
    "application/json",
    "application/json; charset=utf-8",
    "text/event-stream",
    "text/plain; charset=iso-8859-1",
    "application/octet-stream",
    "audio/wav",
    "application/x-ndjson",
    "text/html; charset=UTF-8",
    "application/problem+json",
)
# "close" is close-delimited with Connection: close, "bare-close" without it; "-close": framed, then closed
FRAMINGS = ("length", "chunked", "close", "bare-close", "length-close", "chunked-close")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@"
QUERY_CHARS = PATH_CHARS + "/?"
VALUE_CHARS = string.ascii_letters + string.digits + " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" + "\t\xa0\xe9\xff\xb5"
NAME_CHARS = string.ascii_letters + string.digits + "-_."


# -- plans ---------------------------------------------------------------------------------------


@dataclass
class Call:
    """What the caller sends."""

    case: int
    method: str
    target: str
    headers: Headers  # as sent, in order, Host included, framing and Expect excluded
    body: bytes
    chunked: bool
    length_header: bool  # send Content-Length even when the body is empty
    expect: bool
    close: bool
    chunk_sizes: list[int]
    cuts: list[float]  # where the request bytes are split over writes (fractions)


@dataclass
class Plan:
    """How the app answers."""

    status: int
    reason: str
    headers: Headers  # end-to-end headers, in order
    hop: Headers  # hop-by-hop headers the app adds when it keeps the connection
    framing: str  # one of FRAMINGS
    body: bytes
    chunk_sizes: list[int]
    chunk_ext: bool
    upper_hex: bool
    trailers: Headers
    cuts: list[float]
    pause: float
    head_length: int  # Content-Length of a 304 (the selected representation's)
    framing_at: int  # where among the end-to-end headers the framing headers go


@dataclass
class Seen:
    """A request as the app read it."""

    method: str
    target: str
    headers: Headers
    body: bytes
    trailers: Headers = field(default_factory=list)


@dataclass
class Got:
    """A reply as the caller read it."""

    interim: list[int]
    status: int
    reason: str
    headers: Headers
    body: bytes
    reusable: bool


def _token(rng: random.Random, n: int) -> str:
    return "".join(rng.choice(NAME_CHARS) for _ in range(n))


def _value(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.1:
        return ""
    if kind < 0.2:
        return " " * rng.randint(1, 3) + _token(rng, 4) + " " * rng.randint(1, 3)  # OWS around the value
    n = rng.choice((1, 5, 20, 80, 300))
    text = "".join(rng.choice(VALUE_CHARS) for _ in range(n)).strip(" \t")
    return text or "x"


def _header_name(rng: random.Random) -> str:
    name = "X-" + _token(rng, rng.randint(1, 12))
    if rng.random() < 0.1:
        name += "!#$%&'*+^`|~"
    case = rng.random()
    if case < 0.3:
        return name.lower()
    if case < 0.5:
        return name.upper()
    return name


def _is_special(name: str) -> bool:
    low = name.lower()
    return low in HOP_BY_HOP or low in REQUEST_REWRITTEN or low.startswith("x-forwarded") or low == CASE_HEADER.lower()


def _custom_headers(rng: random.Random, n: int) -> Headers:
    headers: Headers = []
    for _ in range(n):
        name = _header_name(rng)
        if _is_special(name):
            continue
        headers.append((name, _value(rng)))
        if rng.random() < 0.2:  # the same name again, maybe in another case
            headers.append((rng.choice((name, name.lower(), name.upper())), _value(rng)))
    return headers


def _body(rng: random.Random, sizes: tuple[tuple[float, int, int], ...]) -> bytes:
    x = rng.random()
    for p, lo, hi in sizes:
        if x < p:
            return rng.randbytes(rng.randint(lo, hi))
        x -= p
    return b""


def _partition(rng: random.Random, size: int, max_parts: int) -> list[int]:
    """Chunk sizes adding up to ``size`` (no empty chunk: a zero-size chunk ends the body)."""
    if size == 0:
        return []
    n = rng.randint(1, max(1, min(max_parts, size)))
    cuts = sorted(rng.sample(range(1, size), n - 1)) if n > 1 else []
    edges = [0, *cuts, size]
    return [b - a for a, b in itertools.pairwise(edges)]


def _cuts(rng: random.Random) -> list[float]:
    if rng.random() < 0.55:
        return []
    return sorted(rng.random() for _ in range(rng.randint(1, 5)))


def make_call(rng: random.Random, case: int) -> Call:
    method = rng.choice(METHODS)
    segments = [
        "".join(
            rng.choice(PATH_CHARS) if rng.random() > 0.1 else f"%{rng.randrange(256):02X}"
            for _ in range(rng.randint(0, 10))
        )
        for _ in range(rng.randint(0, 4))
    ]
    path = "/" + "/".join(segments)
    if rng.random() < 0.1:
        path += "/"
    query = ""
    if rng.random() < 0.6:
        query = "&".join(
            f"{_token(rng, rng.randint(0, 6))}=" + "".join(rng.choice(QUERY_CHARS) for _ in range(rng.randint(0, 12)))
            for _ in range(rng.randint(1, 4))
        )
    target = f"{path}?{query}" if query else path
    if not query and rng.random() < 0.1:
        target += "?"
    if method == "OPTIONS" and rng.random() < 0.2:
        target = "*"

    if method in BODY_METHODS or (method != "HEAD" and rng.random() < 0.15):
        body = _body(rng, ((0.15, 0, 0), (0.35, 1, 2000), (0.42, 2000, 200 * 1024), (0.08, MB, MB + MB // 2)))
    else:
        body = b""
    chunked = rng.random() < 0.35 and (bool(body) or method in BODY_METHODS)
    headers = _custom_headers(rng, rng.randint(0, 8))
    if rng.random() < 0.5:
        headers.insert(rng.randint(0, len(headers)), ("Content-Type", rng.choice(CONTENT_TYPES)))
    if rng.random() < 0.3:
        headers.insert(rng.randint(0, len(headers)), ("User-Agent", "diff-test/1.0 (+raw)"))
    if rng.random() < 0.2:
        headers.insert(rng.randint(0, len(headers)), ("Authorization", "Bearer " + _token(rng, 24)))
    if rng.random() < 0.2:
        headers.insert(rng.randint(0, len(headers)), ("Cookie", "a=1; b=\xe9t\xe9"))
    close = rng.random() < 0.1
    hop: Headers = []
    if rng.random() < 0.25:
        hop.append(("Keep-Alive", "timeout=5, max=100"))
    if rng.random() < 0.2:
        hop.append(("TE", "trailers"))
    if rng.random() < 0.2:
        hop += [("Connection", "X-Req-Hop"), ("X-Req-Hop", "dropped by a proxy")]
    if rng.random() < 0.1:
        hop.append(("Proxy-Authorization", "Basic cHJveHk6c2VjcmV0"))
    if close:
        hop.append(("Connection", rng.choice(("close", "Close", "keep-alive, close"))))
    elif rng.random() < 0.3:
        hop.append(("Connection", "keep-alive"))
    for h in hop:
        headers.insert(rng.randint(0, len(headers)), h)
    headers.insert(rng.randint(0, len(headers)), ("Host", rng.choice(("example.test", "localhost:4242", "[::1]:80"))))
    headers.insert(0, (CASE_HEADER, str(case)))
    return Call(
        case=case,
        method=method,
        target=target,
        headers=headers,
        body=body,
        chunked=chunked,
        length_header=not chunked and (bool(body) or method in BODY_METHODS or rng.random() < 0.1),
        expect=bool(body) and rng.random() < 0.15,
        close=close,
        chunk_sizes=_partition(rng, len(body), 12),
        cuts=_cuts(rng),
    )


def make_plan(rng: random.Random) -> Plan:
    status, reason = rng.choice(STATUSES)
    body = (
        b""
        if status in NO_BODY
        else _body(
            rng,
            (
                (0.15, 0, 0),
                (0.3, 1, 2000),
                (0.2, 2000, 200 * 1024),
                (0.1, 200 * 1024, MB),
                (0.07, MB - 1, MB + 1),
                (0.12, MB + 2, 3 * MB),
            ),
        )
    )
    headers = _custom_headers(rng, rng.randint(0, 10))
    extras: Headers = []
    if rng.random() < 0.8:
        extras.append(("Content-Type", rng.choice(CONTENT_TYPES)))
    if rng.random() < 0.35:
        extras += [
            ("Set-Cookie", "session=abc; Path=/; HttpOnly"),
            ("Set-Cookie", "theme=dark; Expires=Wed, 21 Oct 2037 07:28:00 GMT"),
        ]
    if rng.random() < 0.2:
        extras.append(("Date", "Mon, 01 Jan 2024 00:00:00 GMT"))
    if rng.random() < 0.2:
        extras.append(("Server", "raw-app/0.1"))
    if status == 301:
        extras.append(("Location", "/elsewhere?x=1"))
    if rng.random() < 0.15:
        extras.append(("Content-Encoding", "gzip"))  # not gzip at all: nothing may decode it
    if rng.random() < 0.15:
        extras += [("Vary", "Accept"), ("vary", "Accept-Encoding")]
    if rng.random() < 0.15:
        extras.append(("ETag", '"' + _token(rng, 10) + '"'))
    for h in extras:
        headers.insert(rng.randint(0, len(headers)), h)
    hop: Headers = []
    if rng.random() < 0.3:
        hop.append(("Connection", "keep-alive"))
    if rng.random() < 0.2:
        hop.append(("Keep-Alive", "timeout=5"))
    if rng.random() < 0.15:
        hop += [("Connection", "X-App-Hop"), ("X-App-Hop", "for the next hop only")]
    if rng.random() < 0.1:
        hop.append(("Proxy-Authenticate", 'Basic realm="x"'))
    framing = rng.choices(FRAMINGS, (40, 30, 10, 5, 8, 7))[0]
    trailers: Headers = []
    if framing.startswith("chunked") and rng.random() < 0.2:
        trailers = [("X-Checksum", _token(rng, 8))]
        hop.append(("Trailer", "X-Checksum"))
    big = len(body) > 64 * 1024
    return Plan(
        status=status,
        reason=reason,
        headers=headers,
        hop=hop,
        framing=framing,
        body=body,
        chunk_sizes=_partition(rng, len(body), 40 if big else 15),
        chunk_ext=rng.random() < 0.15,
        upper_hex=rng.random() < 0.5,
        trailers=trailers,
        cuts=_cuts(rng),
        pause=rng.choice((0.0, 0.0, 0.001, 0.002)),
        head_length=rng.randint(0, 5000),
        framing_at=rng.randint(0, len(headers)),
    )


# -- wire helpers ----------------------------------------------------------------------------------


def _parse_fields(lines: list[str]) -> Headers:
    out: Headers = []
    for line in lines:
        name, _, value = line.partition(":")
        out.append((name, value.strip(" \t")))
    return out


def _tokens(headers: Headers, name: str) -> list[str]:
    return [t.strip().lower() for k, v in headers if k.lower() == name for t in v.split(",") if t.strip()]


def end_to_end(headers: Headers, also: frozenset[str] = frozenset()) -> Headers:
    """``headers`` without hop-by-hop ones (nor those named in Connection), order kept."""
    named = set(_tokens(headers, "connection"))
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | also and k.lower() not in named]


def _chunked(sizes: list[int], data: bytes, ext: bool, upper: bool, trailers: Headers) -> bytes:
    out: list[bytes] = []
    pos = 0
    for i, n in enumerate(sizes):
        size = f"{n:X}" if upper else f"{n:x}"
        out.append(f"{size}{';ext=' + str(i) if ext else ''}\r\n".encode() + data[pos : pos + n] + b"\r\n")
        pos += n
    out.append(b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers).encode("latin-1") + b"\r\n")
    return b"".join(out)


def _split(data: bytes, cuts: list[float]) -> list[bytes]:
    points = sorted({int(c * len(data)) for c in cuts} - {0, len(data)})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(edges)]


async def _read_chunked(reader: asyncio.StreamReader) -> tuple[bytes, Headers]:
    parts: list[bytes] = []
    while True:
        line = (await reader.readuntil(b"\r\n")).decode("latin-1")
        size = int(line.split(";", 1)[0].strip(), 16)
        if size == 0:
            break
        parts.append(await reader.readexactly(size))
        assert await reader.readexactly(2) == b"\r\n"
    trailer_lines: list[str] = []
    while (line := (await reader.readuntil(b"\r\n")).decode("latin-1")) != "\r\n":
        trailer_lines.append(line[:-2])
    return b"".join(parts), _parse_fields(trailer_lines)


def encode_call(call: Call) -> list[bytes]:
    headers = list(call.headers)
    if call.chunked:
        headers.append(("Transfer-Encoding", "chunked"))
    elif call.length_header:
        headers.append(("Content-Length", str(len(call.body))))
    if call.expect:
        headers.append(("Expect", "100-continue"))
    head = (f"{call.method} {call.target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
        "latin-1"
    )
    body = _chunked(call.chunk_sizes, call.body, False, False, []) if call.chunked else call.body
    return _split(head + body, call.cuts)


def encode_reply(plan: Plan, seen: Seen) -> tuple[bytes, bool]:
    """The app's reply to ``seen`` by ``plan``, and whether the app keeps the connection after it."""
    head_only = seen.method == "HEAD" or plan.status in NO_BODY
    asked_close = "close" in _tokens(seen.headers, "connection")
    close = plan.framing not in ("length", "chunked") or asked_close
    framing: Headers = []
    if plan.status == 304 and plan.framing in ("length", "length-close"):
        framing.append(("Content-Length", str(plan.head_length)))
    elif plan.status not in NO_BODY:
        if plan.framing in ("length", "length-close"):
            framing.append(("Content-Length", str(len(plan.body))))
        elif plan.framing in ("chunked", "chunked-close"):
            framing.append(("Transfer-Encoding", _cased("chunked", plan.upper_hex)))
    if close:
        if plan.framing != "bare-close" or head_only or asked_close:
            framing.append(("Connection", "close"))
    else:
        framing += plan.hop
    headers = plan.headers[: plan.framing_at] + framing + plan.headers[plan.framing_at :]
    head = (f"HTTP/1.1 {plan.status} {plan.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode(
        "latin-1"
    )
    if head_only:
        body = b""
    elif plan.framing in ("chunked", "chunked-close"):
        body = _chunked(plan.chunk_sizes, plan.body, plan.chunk_ext, plan.upper_hex, plan.trailers)
    else:
        body = plan.body
    return head + body, not close


def _cased(word: str, upper: bool) -> str:
    return word.capitalize() if upper else word


async def read_call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Seen:
    head = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
    method, target, version = head[0].split(" ")
    assert version == "HTTP/1.1"
    headers = _parse_fields(head[1:])
    if "100-continue" in _tokens(headers, "expect"):
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in _tokens(headers, "transfer-encoding"):
        body, trailers = await _read_chunked(reader)
        return Seen(method, target, headers, body, trailers)
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    return Seen(method, target, headers, await reader.readexactly(length) if length else b"")


async def read_reply(reader: asyncio.StreamReader, method: str) -> Got:
    interim: list[int] = []
    while True:
        head = (await reader.readuntil(b"\r\n\r\n"))[:-4].decode("latin-1").split("\r\n")
        version, code, *rest = head[0].split(" ", 2)
        assert version == "HTTP/1.1", head[0]
        status = int(code)
        if 100 <= status < 200:
            interim.append(status)
            continue
        break
    headers = _parse_fields(head[1:])
    reusable = "close" not in _tokens(headers, "connection")
    codings = _tokens(headers, "transfer-encoding")
    length = [v for k, v in headers if k.lower() == "content-length"]
    if method == "HEAD" or status in NO_BODY:
        body = b""
    elif codings:
        assert codings[-1] == "chunked", codings
        body, _ = await _read_chunked(reader)
    elif length:
        body = await reader.readexactly(int(length[0]))
    else:
        body = await reader.read()
        reusable = False
    return Got(interim, status, rest[0] if rest else "", headers, body, reusable)


class Caller:
    """One raw client socket, reopened only when the previous reply ended it."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.host, self.port = host, int(port)
        self.conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.connects = 0

    async def send(self, calls: list[Call]) -> list[Got]:
        """Send ``calls`` back to back on one socket (pipelined when more than one), then read the replies."""
        if self.conn is None:
            self.conn = await asyncio.open_connection(self.host, self.port)
            self.connects += 1
        reader, writer = self.conn
        for call in calls:
            for piece in encode_call(call):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(0)  # the other end may read each piece on its own
        replies = [await read_reply(reader, call.method) for call in calls]
        if not replies[-1].reusable or calls[-1].close:
            self.close()
        return replies

    def close(self) -> None:
        if self.conn is not None:
            self.conn[1].close()
            self.conn = None


def same_bytes(a: bytes, b: bytes, what: str) -> None:
    if a != b:
        at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        raise AssertionError(
            f"{what}: {len(a)} vs {len(b)} bytes, first difference at offset {at}: "
            f"{a[at : at + 24]!r} vs {b[at : at + 24]!r}"
        )


# -- the raw app -----------------------------------------------------------------------------------


class App:
    def __init__(self) -> None:
        self.plans: dict[int, Plan] = {}
        self.seen: dict[int, list[Seen]] = {}

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            seen = await read_call(reader, writer)
            case = int(next(v for k, v in seen.headers if k == CASE_HEADER))
            self.seen.setdefault(case, []).append(seen)
            plan = self.plans[case]
            wire, keep = encode_reply(plan, seen)
            for piece in _split(wire, plan.cuts):
                writer.write(piece)
                await writer.drain()
                await asyncio.sleep(plan.pause)
            if not keep:
                return  # raw_app closes the connection


# -- the test --------------------------------------------------------------------------------------


def describe(call: Call, plan: Plan) -> str:
    return (
        f"case {call.case}: {call.method} {call.target[:60]!r} body={len(call.body)} chunked={call.chunked} "
        f"expect={call.expect} close={call.close} -> {plan.status} {plan.reason!r} {plan.framing} "
        f"body={len(plan.body)} cuts={len(plan.cuts)}"
    )


def check_direct(call: Call, plan: Plan, got: Got, seen: Seen) -> None:
    """The direct path is the reference; first make sure it is what the plan says (the harness is right)."""
    assert (seen.method, seen.target) == (call.method, call.target)
    same_bytes(seen.body, call.body, "request body at the app (direct)")
    assert (got.status, got.reason) == (plan.status, plan.reason)
    assert end_to_end(got.headers) == [(k, v.strip(" \t")) for k, v in plan.headers]
    head_only = call.method == "HEAD" or plan.status in NO_BODY
    same_bytes(got.body, b"" if head_only else plan.body, "reply body (direct)")
    assert got.interim == ([100] if call.expect else [])


def check_relayed(call: Call, direct: Got, relayed: Got, seen_direct: Seen, seen_relayed: Seen) -> None:
    # what the app got
    assert (seen_relayed.method, seen_relayed.target) == (seen_direct.method, seen_direct.target)
    same_bytes(seen_relayed.body, seen_direct.body, "request body at the app")
    assert end_to_end(seen_relayed.headers, REQUEST_REWRITTEN) == end_to_end(seen_direct.headers, REQUEST_REWRITTEN)
    framing = [(k.lower(), v) for k, v in seen_relayed.headers if k.lower() in ("content-length", "transfer-encoding")]
    if call.body or call.method in BODY_METHODS:
        assert framing == [("content-length", str(len(call.body)))]
    else:
        assert framing == []
    assert not _tokens(seen_relayed.headers, "expect")
    # what the caller got
    assert (relayed.status, relayed.reason) == (direct.status, direct.reason)
    assert end_to_end(relayed.headers) == end_to_end(direct.headers)
    same_bytes(relayed.body, direct.body, "reply body")
    assert relayed.interim == direct.interim
    if call.method == "HEAD" and direct.status not in NO_BODY:  # a HEAD reply keeps the length a GET would have
        assert [v for k, v in relayed.headers if k.lower() == "content-length"] == [
            v for k, v in direct.headers if k.lower() == "content-length"
        ]


def can_pipeline(call: Call, plan: Plan) -> bool:
    """A request another may follow before its reply: the connection outlives the reply on both paths,
    and no 100 Continue is involved (vapi-dev sends it only when nothing is queued before)."""
    return not call.expect and not call.close and plan.framing in ("length", "chunked")


async def run_batch(
    lst: Listener, app: App, direct: Caller, relayed: Caller, batch: list[tuple[Call, Plan]], done: int
) -> None:
    """Send ``batch`` (pipelined when more than one) both ways and compare; ``done`` exchanges came before."""
    calls = [call for call, _ in batch]
    for call, plan in batch:
        app.plans[call.case] = plan
    got_direct = await asyncio.wait_for(direct.send(calls), CASE_TIMEOUT_S)
    got_relayed = await asyncio.wait_for(relayed.send(calls), CASE_TIMEOUT_S)
    records = await lst.sink.wait_finished(done + len(batch))
    for (call, plan), d, r, ex in zip(batch, got_direct, got_relayed, records[done : done + len(batch)], strict=True):
        try:
            seen_direct, seen_relayed = app.seen.pop(call.case)
            check_direct(call, plan, d, seen_direct)
            check_relayed(call, d, r, seen_direct, seen_relayed)
            assert (ex.method, ex.status, ex.response_bytes, ex.error) == (call.method, d.status, len(d.body), None)
        except AssertionError as e:
            raise AssertionError(f"{describe(call, plan)} (pipelined: {len(batch) > 1}): {e}") from e
        del app.plans[call.case]


@pytest.mark.parametrize("seed", SEEDS)
async def test_relayed_exchange_equals_the_direct_one(seed: int) -> None:
    rng = random.Random(seed)
    app = App()
    done = 0
    async with raw_app(app) as (base, app_connections), running_listener(base) as lst:
        direct, relayed = Caller(base), Caller(lst.url)
        try:
            while done < CASES_PER_SEED:
                batch = [(make_call(rng, seed * 1000 + done), make_plan(rng))]
                while (
                    done + len(batch) < CASES_PER_SEED
                    and can_pipeline(*batch[-1])
                    and len(batch) < 3
                    and rng.random() < 0.3
                ):
                    call = make_call(rng, seed * 1000 + done + len(batch))
                    call.expect = False
                    batch.append((call, make_plan(rng)))
                try:
                    await run_batch(lst, app, direct, relayed, batch, done)
                except asyncio.TimeoutError:
                    raise AssertionError(
                        f"seed {seed}: no reply in time for " + "; ".join(describe(c, p) for c, p in batch)
                    ) from None
                done += len(batch)
        finally:
            direct.close()
            relayed.close()
    # connections were reused on both sides of vapi-dev
    assert relayed.connects < CASES_PER_SEED
    assert len(app_connections) < 2 * CASES_PER_SEED


# -- regressions: vapi-dev bugs the differential cases found -----------------------------------------


async def _one_exchange(request: bytes, reply: bytes) -> tuple[str, bytes]:
    """``request`` through vapi-dev to an app answering ``reply``: the request line the app got, and the
    status line the caller got."""
    lines: list[str] = []

    async def app(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen = await read_call(reader, writer)
        lines.append(f"{seen.method} {seen.target}")
        writer.write(reply)
        await writer.drain()

    async with raw_app(app) as (base, _), running_listener(base) as lst:
        reader, writer = await connect(lst)
        writer.write(request)
        status_line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        writer.close()
    return lines[0], status_line


async def test_empty_reason_phrase_is_relayed_empty() -> None:
    """The app's status line has no reason phrase; vapi-dev invents one (reason_for: "Unknown" for 299)."""
    _, status_line = await _one_exchange(
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 299 \r\nContent-Length: 2\r\n\r\nok"
    )
    assert status_line == b"HTTP/1.1 299 \r\n"


async def test_empty_query_keeps_its_question_mark() -> None:
    """ "/p?" reaches the app as "/p": the target the app sees (and may sign or route on) is changed."""
    line, _ = await _one_exchange(
        b"GET /p? HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    assert line == "GET /p?"


async def test_asterisk_form_options_reaches_the_app_as_asterisk() -> None:
    """OPTIONS * (the server as a whole, RFC 9112 §3.2.4) reaches the app as OPTIONS /* (a resource)."""
    line, _ = await _one_exchange(
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    )
    assert line == "OPTIONS *"


async def test_absolute_form_target_reaches_the_app_in_origin_form() -> None:
    """A server must accept absolute-form (RFC 9112 §3.2.2); vapi-dev forwards it as the path
    "/http://example.test/x", which no app routes."""
    line, _ = await _one_exchange(
        b"GET http://example.test/x?y=1 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    )
    assert line == "GET /x?y=1"
