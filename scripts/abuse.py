"""Abuse `vapi-dev listen` as a stranger on its public URL (or a broken app behind it) would; tabulate what happened.

Starts scripts/abuse_app.py (a recording app on a free port) and the real `vapi-dev listen` console script in
front of it (free port, its own temporary VAPI_DEV_HOME, --tunnel none, journal on, NO_COLOR=1, stdout and stderr
to files, and short --head/--body/--idle timeouts so the run stays short). Each case talks raw sockets to
127.0.0.1; after each one a normal POST checks that vapi-dev still serves (and gets its own reply back). Peak RSS
per case is VmHWM from /proc/PID/status, reset through /proc/PID/clear_refs before the case (VmRSS is sampled
too, in case the reset is refused). Cases that need other options (secrets, HMAC, journal failure, -v) start a
listener of their own. Every process started is stopped at the end.

usage: scripts/abuse [--quick] [--case NAME]... [--listen-arg ARG]... [--json] [--list] [--keep-tmp]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any

from netutil import free_port, wait_port  # scripts/netutil.py

ROOT = Path(__file__).resolve().parent.parent
VAPI_DEV = Path(sys.executable).with_name("vapi-dev")  # the console script of the venv running this
TIMEOUT_ARGS = ["--head-timeout", "2", "--body-timeout", "2", "--idle-timeout", "3"]
# Raw control characters a terminal would act on (C0 but newline, DEL, C1). NO_COLOR=1 and a file as stdout
# mean vapi-dev's own output has none, so any found came from the attacker.
CONTROL = {chr(c) for c in range(0x20) if c != 0x0A} | {chr(c) for c in range(0x7F, 0xA0)}
_checks = itertools.count(1)
TROUBLE = ("Traceback", "Error", "error", "Too many open files", "Exception")


def status_update(call_id: str = "call_abuse_0001", **extra: Any) -> dict[str, Any]:
    return {"message": {"type": "status-update", "call": {"id": call_id}, "status": "in-progress", **extra}}


def tool_calls(call_id: str, arguments: dict[str, Any], name: str = "get_weather") -> dict[str, Any]:
    calls = [{"id": "call_00000", "type": "function", "function": {"name": name, "arguments": arguments}}]
    return {"message": {"type": "tool-calls", "call": {"id": call_id}, "toolCallList": calls}}


# -- processes --------------------------------------------------------------------------------------------------


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 10.0) -> int | None:
    """Ask politely, then kill the process and its group (each child is started in a session of its own)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything it left behind in its group
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)
    return proc.returncode


def proc_status(pid: int, key: str) -> float:
    """A /proc/PID/status figure in MB (VmRSS, VmHWM), NaN when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


class App:
    """scripts/abuse_app.py in a subprocess; what it received is asked of it directly, not through vapi-dev."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        with open(tmp / "app.err", "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "scripts/abuse_app.py"), str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )
        wait_port(self.port, proc=self.proc)

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        return list(self._ask(since)["records"])

    def count(self) -> int:
        return int(self._ask(1 << 60)["count"])

    def _ask(self, since: int) -> dict[str, Any]:
        r = ask(self.port, request("GET", f"/__abuse/records?since={since}"), timeout=20)
        if r.status != 200:
            raise RuntimeError(f"the recording app did not answer ({r.short()})")
        return dict(json.loads(r.body))


class Listener:
    """The real `vapi-dev listen` console script, stdout and stderr to files, in a home of its own."""

    def __init__(self, name: str, target: str, args: Sequence[str], tmp: Path, extra: Sequence[str]) -> None:
        self.name = name
        self.port = free_port()
        self.home = tmp / name
        self.home.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = tmp / f"{name}.out", tmp / f"{name}.err"
        env = {**os.environ, "VAPI_DEV_HOME": str(self.home), "NO_COLOR": "1", "COLUMNS": "200"}
        env["PYTHONUNBUFFERED"] = "1"  # the file fills as lines are printed, so a case can read it
        for var in ("FORCE_COLOR", "NGROK_AUTHTOKEN", "VAPI_API_KEY", "VAPI_DEV_JOURNAL", "VAPI_DEV_DEBUG"):
            env.pop(var, None)
        self.env = env
        self.argv = [str(VAPI_DEV), "listen", target, "--port", str(self.port), "--tunnel", "none"]
        self.argv += [*TIMEOUT_ARGS, *args, *extra]
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
            )
        wait_port(self.port, proc=self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def out(self, since: int = 0) -> str:
        return self.out_path.read_bytes()[since:].decode("utf-8", "replace")

    def err(self, since: int = 0) -> str:
        return self.err_path.read_bytes()[since:].decode("utf-8", "replace")

    def out_size(self) -> int:
        return self.out_path.stat().st_size

    def err_size(self) -> int:
        return self.err_path.stat().st_size

    def alive(self) -> bool:
        return self.proc.poll() is None

    def reset_peak(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # "5" resets VmHWM to the current RSS
            return True
        except OSError:
            return False

    def peak_mb(self) -> float:
        return proc_status(self.pid, "VmHWM")

    def wait_out(self, text: str, timeout: float = 5.0, since: int = 0) -> bool:
        """Bounded wait for ``text`` in stdout (the stream is written beside forwarding, a moment later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.out(since):
                return True
            time.sleep(0.05)
        return False

    def json_lines(self) -> list[dict[str, Any]]:
        rows = []
        for line in self.out().splitlines():
            with contextlib.suppress(ValueError):
                rows.append(dict(json.loads(line)))
        return rows

    def cli(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Another vapi-dev command against this listener's home (its journal)."""
        return subprocess.run(
            [str(VAPI_DEV), *args], capture_output=True, text=True, env=self.env, timeout=timeout, errors="replace"
        )


class Peak:
    """Peak RSS of a process during a block: VmHWM after a reset, and VmRSS sampled every 20 ms."""

    def __init__(self, lst: Listener) -> None:
        self.lst = lst
        self.sampled = 0.0
        self.mb = float("nan")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            rss = proc_status(self.lst.pid, "VmRSS")
            if rss == rss:  # not NaN
                self.sampled = max(self.sampled, rss)

    def __enter__(self) -> Peak:
        self.reset = self.lst.reset_peak()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        hwm = self.lst.peak_mb()
        self.mb = max(self.sampled, hwm) if self.reset and hwm == hwm else self.sampled


# -- raw HTTP ---------------------------------------------------------------------------------------------------


def request(
    method: str, path: str, body: bytes = b"", headers: Sequence[tuple[str, str]] = (), *, length: bool = True
) -> bytes:
    """A request's bytes; header values may carry anything a latin-1 byte can (that is the point)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    if length and (body or method in ("POST", "PUT")):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def json_post(path: str, obj: Any, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    return request("POST", path, json.dumps(obj).encode(), [("Content-Type", "application/json"), *headers])


@dataclass
class Reply:
    status: int | None
    headers: dict[str, str]
    body: bytes
    elapsed: float
    end: str = ""  # why no (whole) reply: closed, reset, timeout, …

    def short(self) -> str:
        if self.status is None:
            return self.end or "no reply"
        return str(self.status) + (f" ({self.end})" if self.end else "")


class Conn:
    """One raw client connection; reads replies (Content-Length, chunked or to EOF), keep-alive aware."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()
        self.closed = False

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        self.sock.settimeout(max(0.001, deadline - time.monotonic()))
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            self.closed = True
            return False
        self.buf += chunk
        return True

    def read_reply(self, timeout: float = 10.0) -> Reply:
        start = time.monotonic()
        deadline = start + timeout
        try:
            while True:
                while b"\r\n\r\n" not in self.buf:
                    if not self._fill(deadline):
                        what = "closed, no reply" if not self.buf else f"closed mid-reply: {bytes(self.buf[:40])!r}"
                        return Reply(None, {}, bytes(self.buf), time.monotonic() - start, what)
                at = self.buf.index(b"\r\n\r\n")
                lines = self.buf[:at].decode("latin-1").split("\r\n")
                del self.buf[: at + 4]
                parts = lines[0].split(" ", 2)
                if len(parts) < 2 or not parts[1].isdigit():
                    return Reply(None, {}, b"", time.monotonic() - start, f"not HTTP: {lines[0][:40]!r}")
                status = int(parts[1])
                headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
                if 100 <= status < 200 and status != 101:
                    continue  # 100 Continue and friends: the real reply follows
                body = self._read_body(status, headers, deadline)
                return Reply(status, headers, body, time.monotonic() - start)
        except TimeoutError:
            return Reply(None, {}, bytes(self.buf), time.monotonic() - start, f"no reply in {timeout:g} s")
        except ConnectionResetError:
            return Reply(None, {}, b"", time.monotonic() - start, "connection reset")
        except OSError as exc:
            return Reply(None, {}, b"", time.monotonic() - start, f"error: {exc}")

    def _read_body(self, status: int, headers: dict[str, str], deadline: float) -> bytes:
        if status in (101, 204, 304):
            return b""
        if "content-length" in headers:
            n = int(headers["content-length"])
            while len(self.buf) < n and self._fill(deadline):
                pass
            body = bytes(self.buf[:n])
            del self.buf[:n]
            return body
        if "chunked" in headers.get("transfer-encoding", "").lower():
            out = bytearray()
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill(deadline):
                        return bytes(out)
                at = self.buf.index(b"\r\n")
                size = int(bytes(self.buf[:at]).split(b";")[0] or b"0", 16)
                while len(self.buf) < at + 2 + size + 2:
                    if not self._fill(deadline):
                        return bytes(out)
                out += self.buf[at + 2 : at + 2 + size]
                del self.buf[: at + 2 + size + 2]
                if size == 0:
                    return bytes(out)
        while self._fill(deadline):  # no framing: to EOF
            pass
        body = bytes(self.buf)
        self.buf.clear()
        return body

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def ask(port: int, data: bytes, timeout: float = 10.0) -> Reply:
    """One request on a connection of its own."""
    start = time.monotonic()
    try:
        conn = Conn(port, timeout=timeout)
    except OSError as exc:
        return Reply(None, {}, b"", time.monotonic() - start, f"connect failed: {exc}")
    try:
        try:
            conn.send(data)
        except OSError as exc:  # refused early: the reply may still be there
            r = conn.read_reply(2.0)
            r.end = r.end or f"(while sending: {exc.strerror})"
            return r
        r = conn.read_reply(timeout)
        r.elapsed = time.monotonic() - start
        return r
    finally:
        conn.close()


def tally(replies: Sequence[Reply]) -> str:
    """``200×3, 502×1`` in order of first appearance."""
    counts = Counter(r.short() for r in replies)
    return ", ".join(f"{k}×{n}" if n > 1 else k for k, n in counts.items())


# -- the table ----------------------------------------------------------------------------------------------------


@dataclass
class Row:
    case: str
    caller: str = ""
    app: str = ""
    served: str = ""  # filled in by the runner for cases on the shared listener
    rss: str = ""  # likewise
    notes: list[str] = field(default_factory=list)


@dataclass
class Ctx:
    tmp: Path
    app: App
    extra: list[str]
    main: Listener | None = None
    own: list[Listener] = field(default_factory=list)

    @property
    def target(self) -> str:
        return f"http://127.0.0.1:{self.app.port}/webhook"

    def start_main(self) -> Listener:
        self.main = Listener(f"main-{next(_checks)}", self.target, [], self.tmp, self.extra)
        return self.main

    def listener(self, name: str, args: Sequence[str]) -> Listener:
        lst = Listener(name, self.target, args, self.tmp, self.extra)
        self.own.append(lst)
        return lst

    @property
    def m(self) -> Listener:
        assert self.main is not None
        return self.main


def serves(ctx: Ctx, lst: Listener) -> str:
    """A normal POST through ``lst``: does it come back 200 with the reply meant for it?"""
    if not lst.alive():
        return f"NO: listen exited ({lst.proc.returncode})"
    path = f"/abuse-check-{next(_checks)}"
    r = ask(lst.port, json_post(path, status_update()), timeout=10)
    if r.status != 200:
        return f"NO: {r.short()}"
    if path.encode() not in r.body:
        return f"NO: got another request's reply ({r.body[:50]!r})"
    return f"yes ({r.elapsed * 1000:.0f} ms)"


def stderr_note(text: str) -> str:
    """What a case left on listen's stderr that looks like trouble (with --json the banner is there too)."""
    bad = [ln.strip() for ln in text.splitlines() if any(w in ln for w in TROUBLE)]
    if not bad:
        return ""
    trace = "Traceback" in text
    return f"stderr: {len(bad)} trouble line(s){', a traceback' if trace else ''}: {bad[-1 if trace else 0][:110]}"


def finish_own(ctx: Ctx, row: Row, *lsts: Listener) -> None:
    """For a case on listeners of its own: served check, peak RSS, stderr, then stop them."""
    row.served = "; ".join(f"{lst.name}: {serves(ctx, lst)}" if len(lsts) > 1 else serves(ctx, lst) for lst in lsts)
    row.rss = " / ".join(f"{lst.peak_mb():.1f}" for lst in lsts)
    for lst in lsts:
        note = stderr_note(lst.err())
        if note:
            row.notes.append(f"{lst.name} {note}")
        stop(lst.proc)


def journal_events(lst: Listener, limit: int, marker_prefix: str = "", timeout: float = 5.0) -> list[dict[str, Any]]:
    """`vapi-dev events --json` of a listener's journal; waits (bounded) for a path starting with
    ``marker_prefix`` to be there, since the journal is written beside forwarding, a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        rows = []
        for line in lst.cli("events", "--json", "--limit", str(limit)).stdout.splitlines():
            with contextlib.suppress(ValueError):
                rows.append(dict(json.loads(line)))
        if not marker_prefix or any(str(e.get("path", "")).startswith(marker_prefix) for e in rows):
            return rows
        if time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def control_chars(text: str) -> Counter[str]:
    return Counter(repr(c) for c in text if c in CONTROL)


# -- 1. terminal injection --------------------------------------------------------------------------------------

EVIL = (
    "\x1b[31mRED\x1b[0m \x1b]0;pwned-title\x07 \x1b]8;;https://evil.example\x07click\x1b]8;;\x07 "
    "\rCR \x08BS \x00NUL \x9b2J"
)


def case_injection(ctx: Ctx) -> Row:
    row = Row("1 terminal injection (type, call id, path, header, tool name, raw body)")
    verbose = ctx.listener("injection-v", ["-v"])
    probes: dict[str, bytes] = {
        "call id": json_post("/inj-type", status_update("call" + EVIL, detail=EVIL)),
        "type": json_post("/inj-type2", {"message": {"type": "status-update" + EVIL, "call": {"id": "c" + EVIL}}}),
        "tool": json_post("/inj-tool", tool_calls("call_inj", {"city": EVIL}, name="get\x1b]0;t\x07w\r\n01:00 fake")),
        "%-path": request("GET", "/inj%1b%5b31mRED%1b%5d0;t%07%0d%08%00%c2%9b?q=%1b%5b2J"),  # non-Vapi: path shown
        "raw path": request("POST", "/inj\x1b[31mRAW\x07", b"{}"),
        "header": request(
            "GET", "/inj-header", headers=[("X-Evil", "\x1b]0;title\x07\x1b[31mred"), ("User-Agent", EVIL)]
        ),
        "raw body": request("POST", "/inj-rawbody", b'{"message":{"type":"status-update\x1b[31m\x1b]0;t\x07"}}'),
    }
    seen = ctx.app.count()
    outcomes: dict[str, Counter[str]] = {}
    replies: list[Reply] = []
    for lst in (ctx.m, verbose):
        out_from, err_from = lst.out_size(), lst.err_size()
        answers = {k: ask(lst.port, p, timeout=10) for k, p in probes.items()}
        replies += answers.values()
        refused = {k: r.short() for k, r in answers.items() if r.status != 200}
        marker = f"/inj-done-{next(_checks)}"
        ask(lst.port, request("GET", marker), timeout=10)
        lst.wait_out(marker, since=out_from)
        outcomes[f"{'-v ' if lst is verbose else ''}stdout"] = control_chars(lst.out(out_from))
        outcomes[f"{'-v ' if lst is verbose else ''}stderr"] = control_chars(lst.err(err_from))
    # `show` prints headers too: every probe the plain listener journaled, shown again
    events = [e for e in journal_events(ctx.m, 60, marker_prefix="/inj-done") if e.get("path", "").startswith("/inj")]
    shown = "".join(ctx.m.cli("show", str(e["id"])).stdout for e in events if "inj-done" not in e.get("path", ""))
    outcomes[f"`show` of {len(events) - 1} journaled probes"] = control_chars(shown)
    row.caller = f"{len(probes)} probes ×2 listeners: {tally(replies)}; not 200: {refused or 'none'}"
    got = ctx.app.records(seen)
    row.app = f"{sum(1 for r in got if '/inj' in r['url'])} of {2 * len(probes)} forwarded"
    dirty = {k: v for k, v in outcomes.items() if v}
    if not dirty:
        row.notes.append("no raw control character in stdout or stderr (plain and -v) nor in `show`")
    for where, counts in dirty.items():
        row.notes.append(f"RAW CONTROL CHARS in {where}: " + ", ".join(f"{c}×{n}" for c, n in counts.most_common()))
    note = stderr_note(verbose.err())
    if note:
        row.notes.append("-v " + note)
    if not verbose.alive():
        row.notes.append(f"-v listener exited ({verbose.proc.returncode})")
    stop(verbose.proc)
    return row


# -- 2. a 2 MB tool-calls reply while small exchanges run -------------------------------------------------------


BIG_ROUNDS = 8  # per worker, 3 workers


def case_big_reply(ctx: Ctx) -> Row:
    row = Row(
        f"2 app replies 20,000 tool-call results (~2 MB) ×{3 * BIG_ROUNDS}, 3 at a time, while small exchanges run"
    )
    lst = ctx.listener("big-reply", [])  # a fresh process, so its peak RSS is this case's alone
    port = lst.port

    def small() -> float:
        r = ask(port, json_post(f"/small-{next(_checks)}", status_update()), timeout=30)
        return r.elapsed * 1000 if r.status == 200 else float("inf")

    baseline = [small() for _ in range(30)]
    out_from = lst.out_size()
    seen = ctx.app.count()
    big: list[Reply] = []

    def big_worker() -> None:
        for _ in range(BIG_ROUNDS):
            big.append(ask(port, json_post("/big-tool-reply", tool_calls("call_big", {"city": "Paris"})), timeout=30))

    workers = [threading.Thread(target=big_worker, daemon=True) for _ in range(3)]
    for w in workers:
        w.start()
    during: list[float] = []
    deadline = time.monotonic() + 60
    while any(w.is_alive() for w in workers) and time.monotonic() < deadline:
        during.append(small())
        time.sleep(0.01)
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    sizes = sorted({len(r.body) for r in big})
    row.caller = (
        f"big: {tally(big)}, {'/'.join(f'{s / 1e6:.2f}' for s in sizes)} MB, "
        f"slowest {max(r.elapsed for r in big):.2f} s; "
        f"small: max {max(during):.0f} ms (median {statistics.median(during):.1f}) during, "
        f"vs max {max(baseline):.0f} ms (median {statistics.median(baseline):.1f}) before"
    )
    got = ctx.app.records(seen)
    row.app = f"{sum(r['url'].endswith('/big-tool-reply') for r in got)} big + {len(during)} small requests"
    row.notes.append(
        f"request names 1 tool call, reply answers 20,000; stdout grew {(lst.out_size() - out_from) / 1e3:.0f} kB"
    )
    finish_own(ctx, row, lst)
    return row


# -- 3. three concurrent 200 MB uploads -------------------------------------------------------------------------

UPLOAD = 200 * 1024 * 1024
CHUNK = b"\0" * (1 << 20)


def upload(port: int, path: str, size: int) -> Reply:
    """A POST of ``size`` bytes streamed from a reused 1 MiB buffer (nothing like 200 MB is held here)."""
    start = time.monotonic()
    conn = Conn(port, timeout=60)
    try:
        head = request("POST", path, headers=[("Content-Type", "application/octet-stream")], length=False)
        conn.send(head[:-2] + f"Content-Length: {size}\r\n\r\n".encode())
        sent = 0
        try:
            while sent < size:
                n = min(len(CHUNK), size - sent)
                conn.send(CHUNK[:n] if n < len(CHUNK) else CHUNK)
                sent += n
        except OSError as exc:
            r = conn.read_reply(2.0)
            r.end = (r.end + " " if r.end else "") + f"stopped at {sent / 1e6:.0f} MB: {exc.strerror}"
            return r
        r = conn.read_reply(60)
        r.elapsed = time.monotonic() - start
        return r
    finally:
        conn.close()


def case_uploads(ctx: Ctx) -> Row:
    row = Row("3 three concurrent 200 MiB uploads")
    lst = ctx.listener("uploads", [])  # a fresh process, so its peak RSS is this case's alone
    seen = ctx.app.count()
    replies: list[Reply] = []
    workers = [
        threading.Thread(target=lambda i=i: replies.append(upload(lst.port, f"/upload-{i}", UPLOAD)), daemon=True)
        for i in range(3)
    ]
    start = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(1.0, start + 120 - time.monotonic()))
    row.caller = f"{tally(replies)} in {time.monotonic() - start:.1f} s"
    got = [r for r in ctx.app.records(seen) if "/upload-" in r["url"]]
    full = sum(r["body"] == UPLOAD for r in got)
    row.app = f"{len(got)} uploads, {full} of them full size ({UPLOAD:,} B)"
    finish_own(ctx, row, lst)
    row.notes.append(f"RSS target < 200 MB: {'met' if float(row.rss) < 200 else 'NOT met'}")
    return row


# -- 4. slowloris -----------------------------------------------------------------------------------------------


def slow_head(port: int) -> str:
    conn = Conn(port, timeout=10)
    data = json_post("/slow-head", status_update())
    start = time.monotonic()
    try:
        for i in range(len(data)):
            if time.monotonic() - start > 8:
                return f"still open after 8 s ({i} bytes sent)"
            try:
                conn.send(data[i : i + 1])
            except OSError as exc:
                return f"send failed after {time.monotonic() - start:.1f} s: {exc.strerror}"
            if select.select([conn.sock], [], [], 1.0)[0]:
                r = conn.read_reply(3)
                return f"{r.short()} after {time.monotonic() - start:.1f} s ({i + 1} bytes sent)"
        return "whole request sent"
    finally:
        conn.close()


def slow_body(port: int) -> str:
    conn = Conn(port, timeout=10)
    try:
        start = time.monotonic()
        conn.send(request("POST", "/slow-body", headers=[("Content-Length", "1000")], length=False) + b'{"message"')
        r = conn.read_reply(8)
        return f"{r.short()} after {time.monotonic() - start:.1f} s"
    finally:
        conn.close()


def idle(port: int) -> str:
    conn = Conn(port, timeout=10)
    try:
        conn.send(json_post("/before-idle", status_update()))
        r = conn.read_reply(5)
        start = time.monotonic()
        conn.sock.settimeout(8)
        try:
            data = conn.sock.recv(1024)
        except TimeoutError:
            return f"reply {r.short()}, then still open after 8 s"
        except ConnectionResetError:
            return f"reply {r.short()}, then reset after {time.monotonic() - start:.1f} s"
        extra = f" (sent {data[:30]!r} first)" if data else ""
        return f"reply {r.short()}, then closed after {time.monotonic() - start:.1f} s idle{extra}"
    finally:
        conn.close()


def case_slowloris(ctx: Ctx) -> Row:
    row = Row("4 slowloris: head 1 byte/s · stalled body · idle keep-alive (2/2/3 s timeouts)")
    seen = ctx.app.count()
    results: dict[str, str] = {}
    jobs = {"head": slow_head, "body": slow_body, "idle": idle}
    workers = [
        threading.Thread(target=lambda k=k, f=f: results.__setitem__(k, f(ctx.m.port)), daemon=True)
        for k, f in jobs.items()
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(15)
    row.caller = "; ".join(f"{k}: {results.get(k, 'script error: no result')}" for k in jobs)
    got = Counter(r["url"].rsplit("/", 1)[-1] for r in ctx.app.records(seen))
    row.app = ", ".join(
        f"{k}: {got.get(p, 0)}" for k, p in (("head", "slow-head"), ("body", "slow-body"), ("idle", "before-idle"))
    )
    return row


# -- 5. 600 connections held open -------------------------------------------------------------------------------


def peek_all(socks: Sequence[socket.socket]) -> str:
    """What each held connection has been told so far (first status code), without waiting or consuming."""
    got: Counter[str] = Counter()
    for s in socks:
        s.setblocking(False)  # a socket with a timeout would wait that long for MSG_DONTWAIT too
        try:
            data = s.recv(256, socket.MSG_PEEK)
            got[data.split(b" ", 2)[1].decode("latin-1", "replace") if data.startswith(b"HTTP/") else "closed"] += 1
        except BlockingIOError:
            got["open"] += 1
        except ConnectionResetError:
            got["reset"] += 1
        except OSError as exc:
            got[type(exc).__name__] += 1
    return ", ".join(f"{k}×{n}" for k, n in got.most_common())


def case_connections(ctx: Ctx) -> Row:
    row = Row("5 600 connections held open, silent (default --max-connections 512)")
    socks: list[socket.socket] = []
    failed: Counter[str] = Counter()
    seen = ctx.app.count()
    start = time.monotonic()
    try:
        for _ in range(600):
            try:
                socks.append(socket.create_connection(("127.0.0.1", ctx.m.port), timeout=3))
            except OSError as exc:
                failed[type(exc).__name__] += 1
        opened = time.monotonic() - start
        # vapi-dev answers a silent extra after 1 s; a silent connection's --head-timeout is 2 s
        time.sleep(max(0.0, start + 1.3 - time.monotonic()))
        early = peek_all(socks)
        fds = len(os.listdir(f"/proc/{ctx.m.pid}/fd")) if ctx.m.alive() else 0
        probe = ask(ctx.m.port, json_post("/while-held", status_update()), timeout=5)
        time.sleep(max(0.0, start + 3.2 - time.monotonic()))
        late = peek_all(socks)
    finally:
        for s in socks:
            s.close()
    failed_text = f", connect failed: {dict(failed)}" if failed else ""
    row.caller = (
        f"{len(socks)} opened in {opened:.2f} s{failed_text}; at 1.3 s: {early}; a new POST then: {probe.short()}; "
        f"at 3.2 s: {late}"
    )
    row.app = f"{ctx.app.count() - seen} request(s)"
    row.notes.append(f"{fds} fds open in vapi-dev while held")
    time.sleep(0.3)  # let vapi-dev see the closes before the served check
    return row


# -- 6. secrets ---------------------------------------------------------------------------------------------------

SECRET = "s3cretVALUE"
NEEDLES = ("abc123SECRET", "hunter2SECRET", "sk-SECRET", SECRET)


def case_secrets(ctx: Ctx) -> Row:
    row = Row("6 secrets: ?token=, tool args password/apiKey, --secret value (listeners with -v)")
    text = ctx.listener("secrets-text", ["--secret", SECRET, "-v"])
    js = ctx.listener("secrets-json", ["--secret", SECRET, "-v", "--json"])
    call = "call_secret_0001"
    auth = [("X-Vapi-Secret", SECRET)]
    probes = [
        json_post("/?token=abc123SECRET", status_update(call), auth),
        json_post(
            "/tools", tool_calls(call, {"password": "hunter2SECRET", "apiKey": "sk-SECRET", "note": SECRET}), auth
        ),
    ]
    seen = ctx.app.count()
    replies = [ask(lst.port, p, timeout=10) for lst in (text, js) for p in probes]
    row.caller = tally(replies)
    row.app = f"{ctx.app.count() - seen} of 4 forwarded (unaltered by design)"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and sum(e.get("event") == "exchange" for e in js.json_lines()) < 2:
        time.sleep(0.05)
    text.wait_out("tool-calls")
    finish_own(ctx, row, text, js)  # stopping flushes the journal
    outputs = {"stdout": text.out(), "--json stdout": js.out(), "stderr": text.err() + js.err()}
    for args in (("show", "--json", "last"), ("show", "--json", "1"), ("show", "last"), ("export", "--call", call)):
        r = text.cli(*args)
        outputs[" ".join(args)] = r.stdout + r.stderr if r.returncode == 0 else f"(exit {r.returncode}) {r.stderr}"
    r = text.cli("events", "--json")
    outputs["events --json"] = r.stdout + r.stderr
    leaks = {k: [n for n in NEEDLES if n in v] for k, v in outputs.items()}
    leaked = {k: v for k, v in leaks.items() if v}
    row.notes.append(
        "LEAKED: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in leaked.items())
        if leaked
        else f"no secret in {', '.join(outputs)}"
    )
    failed_cmds = [k for k, v in outputs.items() if v.startswith("(exit")]
    if failed_cmds:
        row.notes.append(f"failed: {', '.join(failed_cmds)}")
    journal = b"".join(p.read_bytes() for p in text.home.glob("journal.sqlite3*") if p.is_file())
    on_disk = [n for n in NEEDLES if n.encode() in journal]
    row.notes.append(f"journal file holds: {', '.join(on_disk) or 'none'} (request bodies are kept for replay)")
    return row


# -- 7. HMAC replay ---------------------------------------------------------------------------------------------

HMAC_KEY = "hm4cKEY"


def signed(body: bytes, ts: int) -> list[tuple[str, str]]:
    """Vapi's HMAC credential with vapi-dev's defaults: hex sha256 of "{timestamp}.{body}"."""
    sig = hmac.new(HMAC_KEY.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return [("Content-Type", "application/json"), ("x-signature", sig), ("x-timestamp", str(ts))]


def case_hmac(ctx: Ctx) -> Row:
    row = Row("7 HMAC replay: correctly signed, timestamp 10 min old (--hmac-secret, default 300 s skew)")
    lst = ctx.listener("hmac", ["--hmac-secret", HMAC_KEY, "--json"])
    body = json.dumps(status_update("call_hmac_0001")).encode()
    seen = ctx.app.count()
    now = int(time.time())
    fresh = ask(lst.port, request("POST", "/fresh", body, signed(body, now)))
    old = ask(lst.port, request("POST", "/replayed", body, signed(body, now - 600)))
    row.caller = f"fresh: {fresh.short()}, 10-min-old: {old.short()}"
    row.app = f"{ctx.app.count() - seen} of 2 forwarded"
    deadline = time.monotonic() + 5
    verdicts: dict[str, Any] = {}
    while time.monotonic() < deadline and len(verdicts) < 2:
        verdicts = {e["path"]: e.get("auth") for e in lst.json_lines() if e.get("event") == "exchange"}
        time.sleep(0.05)

    def show(path: str) -> str:
        a = verdicts.get(path)
        if not isinstance(a, dict):
            return "no verdict"
        return "auth✓" if a.get("ok") else f"auth✗ ({a.get('reason', '')[:70]})"

    row.notes.append(f"fresh: {show('/fresh')}; replayed: {show('/replayed')}")
    finish_own(ctx, row, lst)
    return row


# -- 8. deeply nested JSON --------------------------------------------------------------------------------------


def case_deep_json(ctx: Ctx) -> Row:
    row = Row("8 JSON nested 100,000 deep (status-update)")
    depth = 100_000
    body = b'{"message":{"type":"status-update","call":{"id":"call_deep"},"deep":' + b"[" * depth + b"]" * depth + b"}}"
    path = f"/deep-json-{next(_checks)}"
    seen = ctx.app.count()
    r = ask(ctx.m.port, request("POST", path, body, [("Content-Type", "application/json")]), timeout=20)
    row.caller = f"{r.short()} in {r.elapsed * 1000:.0f} ms"
    got = [x for x in ctx.app.records(seen) if x["url"].endswith(path)]
    row.app = f"{len(body):,} B sent, app got " + (", ".join(f"{x['body']:,} B" for x in got) or "nothing")
    journaled = next((e for e in journal_events(ctx.m, 20, marker_prefix=path) if e.get("path") == path), None)
    if journaled is None:
        row.notes.append("NOT journaled (or `events --json` failed)")
    else:
        shown = ctx.m.cli("show", str(journaled.get("id")))
        shown_j = ctx.m.cli("show", "--json", str(journaled.get("id")))
        said = next((ln.strip() for ln in (shown.stderr + shown_j.stderr).splitlines() if "rror" in ln), "")
        row.notes.append(
            f"journaled (status {journaled.get('status')}, type {journaled.get('message_type')}); "
            f"`show` exit {shown.returncode}, `show --json` exit {shown_j.returncode}"
            + (f" ({said[:90]})" if said else "")
        )
    return row


# -- 9. HTTP edges ----------------------------------------------------------------------------------------------


def app_urls(ctx: Ctx, seen: int, needle: str) -> str:
    urls = [r["url"] for r in ctx.app.records(seen) if needle in r["url"]]
    return ", ".join(urls) if urls else "nothing"


def case_dotdot(ctx: Ctx) -> Row:
    row = Row("9a GET /../../etc/passwd (target path /webhook)")
    seen = ctx.app.count()
    raw = ask(ctx.m.port, request("GET", "/../../etc/passwd"))
    enc = ask(ctx.m.port, request("GET", "/%2e%2e/%2e%2e/etc/passwd"))
    row.caller = f"raw: {raw.short()}; %2e%2e-encoded: {enc.short()}"
    row.app = app_urls(ctx, seen, "passwd")
    row.notes.append("expect 400 for the raw form")
    return row


def case_fragment(ctx: Ctx) -> Row:
    row = Row("9b GET /#frag")
    seen = ctx.app.count()
    r = ask(ctx.m.port, request("GET", "/frag-test#frag"))
    row.caller = r.short()
    got = [x["url"] for x in ctx.app.records(seen) if "frag" in x["url"]]
    row.app = ", ".join(got) or "nothing"
    row.notes.append("app saw '#': " + ("YES" if any("#" in u for u in got) else "no"))
    return row


def case_connect(ctx: Ctx) -> Row:
    row = Row("9c CONNECT 127.0.0.1:22")
    seen = ctx.app.count()
    r = ask(ctx.m.port, b"CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n", timeout=5)
    row.caller = r.short()
    row.app = f"{ctx.app.count() - seen} request(s)"
    row.notes.append("expect 405")
    return row


def case_http09(ctx: Ctx) -> Row:
    row = Row("9d HTTP/0.9 `GET /\\r\\n`")
    seen = ctx.app.count()
    r = ask(ctx.m.port, b"GET /\r\n", timeout=6)
    row.caller = f"{r.short()} after {r.elapsed:.2f} s"
    row.app = f"{ctx.app.count() - seen} request(s)"
    row.notes.append("expect 400 at once (not after --head-timeout)")
    return row


def case_headers(ctx: Ctx) -> Row:
    row = Row("9e 150 header fields (default --max-headers 100)")
    seen = ctx.app.count()
    r = ask(ctx.m.port, json_post("/many-headers", status_update(), [(f"X-H-{i}", "v") for i in range(150)]))
    row.caller = r.short()
    row.app = ", ".join(f"{x['headers']} headers" for x in ctx.app.records(seen)) or "nothing"
    row.notes.append("expect 431")
    return row


def case_h2c(ctx: Ctx) -> Row:
    row = Row("9f POST with Upgrade: h2c and a body")
    seen = ctx.app.count()
    body = b'{"message":{"type":"status-update","call":{"id":"call_h2c"}}}'
    upgrade = [
        ("Connection", "Upgrade, HTTP2-Settings"),
        ("Upgrade", "h2c"),
        ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ]
    r = ask(ctx.m.port, request("POST", "/h2c", body, [("Content-Type", "application/json"), *upgrade]), timeout=6)
    row.caller = r.short() + (" (switched protocols!)" if r.status == 101 else "")
    got = [x for x in ctx.app.records(seen) if x["url"].endswith("/h2c")]
    row.app = (
        ", ".join(
            f"body {x['body']} of {len(body)} B, Upgrade header "
            + (f"passed: {x['upgrade']}" if x["upgrade"] else "removed")
            for x in got
        )
        or "nothing"
    )
    return row


def case_two_replies(ctx: Ctx) -> Row:
    row = Row("9g app writes two replies in one read")
    seen = ctx.app.count()
    r = ask(ctx.m.port, json_post("/two-replies", status_update()), timeout=6)
    row.caller = f"{r.short()} {r.body[:30]!r}"
    row.app = f"{ctx.app.count() - seen} request(s)"
    checks = [serves(ctx, ctx.m) for _ in range(5)]
    row.notes.append(f"expect 502; next 5 POSTs: {Counter(c.split(' (')[0] for c in checks).most_common()}")
    return row


def case_101(ctx: Ctx) -> Row:
    row = Row("9h app answers 101 Switching Protocols")
    seen = ctx.app.count()
    r = ask(ctx.m.port, json_post("/upgrade-101", status_update()), timeout=6)
    row.caller = f"{r.short()} after {r.elapsed:.2f} s"
    row.app = f"{ctx.app.count() - seen} request(s)"
    row.notes.append("expect 502")
    return row


def case_close_each(ctx: Ctx) -> Row:
    row = Row("9i app closes after every reply (no Connection: close): 2,000 POSTs on 4 keep-alive conns")
    seen = ctx.app.count()
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        conn: Conn | None = None
        mine: list[str] = []
        for _ in range(500):
            try:
                if conn is None or conn.closed:
                    conn = Conn(ctx.m.port, timeout=10)
                conn.send(json_post("/close-each", status_update()))
                r = conn.read_reply(10)
                mine.append(r.short())
                if r.status is None or r.headers.get("connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except OSError as exc:
                mine.append(f"error: {exc.strerror or exc}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()
        with lock:
            results.extend(mine)

    start = time.monotonic()
    workers = [threading.Thread(target=worker, daemon=True) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    failed = [x for x in results if x != "200"]
    took = time.monotonic() - start
    row.caller = (
        f"{len(results) - len(failed)} × 200, {len(failed)} failed {Counter(failed).most_common(3)} in {took:.1f} s"
    )
    row.app = f"{ctx.app.count() - seen} request(s)"
    return row


# -- 10. journal write failure ----------------------------------------------------------------------------------

FSIZE_LIMIT = 1 << 20


def case_journal_failure(ctx: Ctx) -> Row:
    row = Row("10 journal write fails mid-run (RLIMIT_FSIZE 1 MiB on listen: EFBIG, works as root)")
    lst = ctx.listener("journal-fail", ["--json"])
    try:
        resource.prlimit(lst.pid, resource.RLIMIT_FSIZE, (FSIZE_LIMIT, FSIZE_LIMIT))
    except (OSError, AttributeError) as exc:
        row.caller = "skipped"
        row.notes.append(f"cannot limit the listener's file size ({exc}); nothing to show")
        finish_own(ctx, row, lst)
        return row
    seen = ctx.app.count()
    body = json.dumps(status_update("call_journal_0001", filler="x" * 200_000)).encode()
    replies = []
    for i in range(40):
        replies.append(ask(lst.port, request("POST", f"/journal-{i}", body, [("Content-Type", "application/json")])))
        time.sleep(0.02)
    time.sleep(0.5)  # the writer flushes every 150 ms
    row.caller = tally(replies)
    got = [r for r in ctx.app.records(seen) if "/journal-" in r["url"]]
    row.app = f"{len(got)} of 40 forwarded ({len(body):,} B each, {sum(r['body'] == len(body) for r in got)} whole)"
    finish_own(ctx, row, lst)
    events = [e for e in lst.json_lines() if e.get("event") in ("notice", "exchange")]
    notices = [e for e in events if e.get("event") == "notice" and "journal" in str(e.get("text", "")).lower()]
    stored = lst.cli("events", "--json", "--limit", "1000")
    kept = sum(1 for line in stored.stdout.splitlines() if '"exchange"' in line)
    exchanges = sum(e.get("event") == "exchange" for e in events)
    first = str(notices[0].get("text", ""))[:100] if notices else ""
    row.notes.append(
        f"journal notices: {len(notices)}"
        + (f" ({first})" if first else "")
        + f"; {exchanges} exchange lines on stdout; {kept} exchanges in the journal; exit code {lst.proc.returncode}"
    )
    return row


# -- running ------------------------------------------------------------------------------------------------------

Case = Callable[[Ctx], Row]
CASES: list[tuple[str, Case, bool]] = [  # name, function, in --quick
    ("injection", case_injection, True),
    ("big-reply", case_big_reply, False),
    ("uploads", case_uploads, False),
    ("slowloris", case_slowloris, False),
    ("connections", case_connections, False),
    ("secrets", case_secrets, True),
    ("hmac", case_hmac, False),
    ("deep-json", case_deep_json, True),
    ("edge-dotdot", case_dotdot, True),
    ("edge-fragment", case_fragment, False),
    ("edge-connect", case_connect, True),
    ("edge-http09", case_http09, True),
    ("edge-headers", case_headers, True),
    ("edge-h2c", case_h2c, False),
    ("edge-two-replies", case_two_replies, False),
    ("edge-101", case_101, False),
    ("edge-close-each", case_close_each, False),
    ("journal-failure", case_journal_failure, False),
]


def run_case(ctx: Ctx, name: str, fn: Case) -> Row:
    restarted = ""
    if ctx.main is None or not ctx.main.alive():
        if ctx.main is not None:
            restarted = f"shared listener had exited ({ctx.main.proc.returncode}) and was restarted"
            stop(ctx.main.proc)
        ctx.start_main()
    lst = ctx.m
    err_from = lst.err_size()
    start = time.monotonic()
    with Peak(lst) as peak:
        try:
            row = fn(ctx)
        except Exception as exc:
            row = Row(name, caller=f"script error: {type(exc).__name__}: {exc}")
    if not row.served:
        row.served = serves(ctx, lst)
    if not row.rss:
        row.rss = f"{peak.mb:.1f}" + ("" if peak.reset else " (sampled)")
        note = stderr_note(lst.err(err_from))
        if note:
            row.notes.append(note)
    if restarted:
        row.notes.insert(0, restarted)
    row.notes.append(f"{time.monotonic() - start:.1f} s")
    row.notes = [n.replace(str(ctx.tmp), "$TMP") for n in row.notes]
    for own in ctx.own:
        stop(own.proc)
    ctx.own.clear()
    return row


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", "\\r") or "-"


def table(rows: Sequence[Row]) -> str:
    out = [
        "| case | what the caller got | what the app got | stayed up & served the next request | peak RSS (MB) "
        "| notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            "| " + " | ".join(cell(x) for x in (r.case, r.caller, r.app, r.served, r.rss, "; ".join(r.notes))) + " |"
        )
    return "\n".join(out)


def describe() -> str:
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{when}, {rev.stdout.strip() or 'unknown commit'}, {os.cpu_count()} CPUs"


def pick(names: Sequence[str], quick: bool) -> list[tuple[str, Case]]:
    if not names:
        return [(n, f) for n, f, q in CASES if q or not quick]
    chosen = [(n, f) for n, f, _ in CASES if any(n == x or n.startswith(x) for x in names)]
    unknown = [x for x in names if not any(n == x or n.startswith(x) for n, _, _ in CASES)]
    if unknown:
        raise SystemExit(f"unknown case {', '.join(unknown)}; cases: {', '.join(n for n, _, _ in CASES)}")
    return chosen


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # run the finally blocks: every process is stopped


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a fast subset (the smoke test)")
    ap.add_argument(
        "--case", action="append", default=[], metavar="NAME", help="run this case (a prefix works); repeatable"
    )
    ap.add_argument("--listen-arg", action="append", default=[], metavar="ARG", help="extra argument for every listen")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory (outputs, journals)")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(f"{n}{'  (quick)' if q else ''}" for n, _, q in CASES))
        return 0
    chosen = pick(args.case, args.quick)
    if not VAPI_DEV.exists():
        raise SystemExit(f"{VAPI_DEV} is missing: run scripts/install")
    signal.signal(signal.SIGTERM, _terminate)
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-abuse-"))
    started = time.monotonic()
    rows: list[Row] = []
    interrupted = False
    ctx: Ctx | None = None
    app: App | None = None
    try:
        app = App(tmp)
        ctx = Ctx(tmp, app, list(args.listen_arg))
        ctx.start_main()
        for name, fn in chosen:
            print(f"… {name}", file=sys.stderr, flush=True)
            rows.append(run_case(ctx, name, fn))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if ctx is not None:
            for lst in [*ctx.own, *([ctx.main] if ctx.main else [])]:
                stop(lst.proc)
        if app is not None:
            stop(app.proc, signal.SIGTERM)
        if args.keep_tmp:
            print(f"outputs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    runtime = time.monotonic() - started
    if args.json:
        print(
            json.dumps(
                {
                    "when": describe(),
                    "listen_args": [*TIMEOUT_ARGS, *args.listen_arg],
                    "runtime_s": round(runtime, 1),
                    "interrupted": interrupted,
                    "rows": [asdict(r) for r in rows],
                },
                indent=1,
            )
        )
        return 130 if interrupted else 0
    print(f"vapi-dev abuse run — {describe()}")
    print(
        f"listen {ctx.m.argv[2] if ctx and ctx.main else 'TARGET'} --port P --tunnel none {' '.join(TIMEOUT_ARGS)}"
        f"{' ' + ' '.join(args.listen_arg) if args.listen_arg else ''} (short timeouts so the run stays short), "
        "NO_COLOR=1, stdout to a file, journal on; peak RSS is VmHWM reset to the current RSS before each case, so it "
        "includes memory kept from earlier cases\n"
    )
    print(table(rows))
    print(f"\nruntime: {runtime:.0f} s ({len(rows)} cases{', INTERRUPTED' if interrupted else ''})")
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
