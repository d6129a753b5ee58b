#!/usr/bin/env python3
"""A stdlib-only stand-in for `cloudflared tunnel --url … --metrics …` (a quick tunnel).

Tests write this file with a ``#!<sys.executable>`` first line and pass it as --cloudflared-path.
It prints cloudflared-like log lines on stderr (with the boxed URL banner), serves ``/ready``,
``/quicktunnel`` and ``/metrics`` on the --metrics address, and forwards bytes from a loopback
"edge" port to the --url upstream, standing in for Cloudflare's edge. The public URL it reports is
``http://127.0.0.1:<edge port>`` (``/quicktunnel`` gives ``127.0.0.1:<edge port>`` as hostname).

FAKE_CLOUDFLARED_MODE: normal, fail_start (exits 1 at once with an error line), never_ready
(``/ready`` stays 503), rate_limited (logs a 429 and exits), banner_only (``/quicktunnel`` 404s, so
only the banner tells the URL), unreachable (the quick-tunnel request fails as with no DNS, exit 1),
edge_unreachable (a URL, then edge dial errors and ``/ready`` stays 503), metrics_port_taken (the
--metrics port is in use, exit 1).
Faults later in the run: FAKE_CLOUDFLARED_DIE_AFTER=S (exit 1 S seconds after becoming ready),
FAKE_CLOUDFLARED_DIE_AFTER_REQUESTS=N (exit 1 once N edge connections have closed),
FAKE_CLOUDFLARED_UNREADY_AFTER=S (``/ready`` turns 503 after S seconds, the process lives on).
FAKE_CLOUDFLARED_PIDFILE, if set, gets the PID, and numbers the runs: MODE and the faults apply to the
first run only; later runs (vapi-dev's restarts) use FAKE_CLOUDFLARED_RESTART_MODE (default normal; ``same``:
as the first run, faults included).
``--version`` prints ``cloudflared version FAKE_CLOUDFLARED_VERSION (built …)`` (default 2026.8.2).
The fake exits on its own when its parent dies or after FAKE_CLOUDFLARED_MAX_LIFETIME seconds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

MAX_LIFETIME = float(os.environ.get("FAKE_CLOUDFLARED_MAX_LIFETIME", "300"))
VERSION = os.environ.get("FAKE_CLOUDFLARED_VERSION", "2026.8.2")
_state: dict[str, object] = {"ready": False, "hostname": "", "closed": 0}
_lock = threading.Lock()
BANNER_ONLY = threading.Event()


def log(level: str, msg: str) -> None:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    with contextlib.suppress(OSError):
        sys.stderr.write(f"{now} {level} {msg}\n")
        sys.stderr.flush()


def pipe(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def serve_edge(listener: socket.socket, host: str, port: int, die_after: int) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection((host, port), timeout=5)
        except OSError:
            conn.close()
            continue
        upstream.settimeout(None)
        threading.Thread(target=pipe, args=(conn, upstream), daemon=True).start()
        threading.Thread(target=relay_back, args=(upstream, conn, die_after), daemon=True).start()


def relay_back(upstream: socket.socket, conn: socket.socket, die_after: int) -> None:
    """The reply direction; when it ends the connection is done, which the request-count fault counts."""
    pipe(upstream, conn)
    with contextlib.suppress(OSError):
        conn.close()
    with _lock:
        _state["closed"] = int(str(_state["closed"])) + 1
        closed = int(str(_state["closed"]))
    if die_after and closed >= die_after:
        die(f"fake: died after {closed} requests")


def die(why: str) -> None:
    log("ERR", f'Serve tunnel error error="{why}"')
    os._exit(1)


def later(seconds: float, action: object) -> None:
    def run() -> None:
        time.sleep(seconds)
        action()  # type: ignore[operator]

    threading.Thread(target=run, daemon=True).start()


def unready() -> None:
    with _lock:
        _state["ready"] = False
    log("ERR", 'Connection terminated error="fake: the edge went away" connIndex=0')


class Metrics(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with _lock:
            ready, hostname = _state["ready"], _state["hostname"]
        if self.path == "/ready":
            conns = 4 if ready else 0
            body = json.dumps({"status": 200 if ready else 503, "readyConnections": conns, "connectorId": "c0"})
            self._send(200 if ready else 503, body.encode())
        elif self.path == "/quicktunnel" and not BANNER_ONLY.is_set():
            self._send(200, json.dumps({"hostname": hostname}).encode())
        elif self.path == "/metrics":
            self._send(200, b"cloudflared_tunnel_ha_connections 4\n", "text/plain")
        else:
            self._send(404, b"404 page not found\n", "text/plain")


def parse(args: list[str]) -> dict[str, str]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(args):
        if args[i].startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--"):
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            opts[args[i]] = ""
            i += 1
    return opts


def watch_parent(parent: int) -> None:
    deadline = time.monotonic() + MAX_LIFETIME
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def install(path: str | os.PathLike[str]) -> str:
    """Write this fake as an executable at ``path`` that runs in the test's interpreter."""
    target = Path(path)
    target.write_text(f"#!{sys.executable}\n" + Path(__file__).read_text(encoding="utf-8"), encoding="utf-8")
    target.chmod(0o755)
    return str(target)


def run_number() -> int:
    """Record this PID in the pidfile (if any); 1 for the first run, 2 for the next, …"""
    pidfile = os.environ.get("FAKE_CLOUDFLARED_PIDFILE")
    if not pidfile:
        return 1
    with open(pidfile, "a+", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
        fh.seek(0)
        return len(fh.read().split())


def main() -> None:
    argv = sys.argv[1:]
    if argv in (["--version"], ["-v"], ["version"]):
        print(f"cloudflared version {VERSION} (built 2026-08-20-1200 UTC)")
        return
    if not os.environ.get("FAKE_CLOUDFLARED_NO_PARENT_WATCH"):  # set: outlives its parent, as the real one may
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    first = run_number() == 1
    mode = os.environ.get("FAKE_CLOUDFLARED_MODE" if first else "FAKE_CLOUDFLARED_RESTART_MODE", "normal")
    if mode == "same":  # later runs behave as the first did, faults included
        first, mode = True, os.environ.get("FAKE_CLOUDFLARED_MODE", "normal")

    def fault(name: str) -> float:
        return float(os.environ.get(f"FAKE_CLOUDFLARED_{name}", "0") or 0) if first else 0.0

    if not argv or argv[0] != "tunnel":
        log("ERR", "fake cloudflared only knows `tunnel`")
        sys.exit(2)
    opts = parse(argv[1:])
    if "--no-autoupdate" not in opts or "--url" not in opts or "--metrics" not in opts:
        log("ERR", f"fake cloudflared missing a flag: {argv}")
        sys.exit(2)
    log("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way")
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if mode == "unreachable":
        cause = (
            'Post "https://api.trycloudflare.com/tunnel": dial tcp: lookup api.trycloudflare.com on '
            "127.0.0.53:53: no such host"
        )
        log("ERR", f'Couldn\'t start tunnel error="failed to request quick Tunnel: {cause}"')
        sys.stderr.write(f"failed to request quick Tunnel: {cause}\n")
        sys.exit(1)
    if mode == "metrics_port_taken":  # what cloudflared says when another program took the --metrics port
        log("ERR", f"failed to bind metrics: listen tcp {opts['--metrics']}: bind: address already in use")
        sys.exit(1)
    if mode == "fail_start":
        log("ERR", 'Couldn\'t start tunnel error="fake failure: no route to the edge"')
        sys.exit(1)
    if mode == "rate_limited":
        log(
            "ERR",
            "Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character 'e' looking "
            'for beginning of value" status_code="429 Too Many Requests"',
        )
        log("FTL", "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value")
        sys.exit(1)
    if mode == "banner_only":
        BANNER_ONLY.set()
    up = urlsplit(opts["--url"])
    edge = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    edge.bind(("127.0.0.1", 0))
    edge.listen(64)
    hostname = f"127.0.0.1:{edge.getsockname()[1]}"
    die_after = int(fault("DIE_AFTER_REQUESTS"))
    args = (edge, up.hostname or "127.0.0.1", up.port or 80, die_after)
    threading.Thread(target=serve_edge, args=args, daemon=True).start()
    mhost, mport = opts["--metrics"].rsplit(":", 1)
    server = ThreadingHTTPServer((mhost, int(mport)), Metrics)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with _lock:
        _state["hostname"] = hostname
    url = f"http://{hostname}"
    width = 92
    log("INF", "+" + "-" * width + "+")
    created = "  Your quick Tunnel has been created! Visit it at (it may take some time to be reachable):"
    log("INF", "|" + created.ljust(width) + "|")
    log("INF", "|" + f"  {url}".ljust(width) + "|")
    log("INF", "+" + "-" * width + "+")
    log("INF", f"Starting metrics server on {opts['--metrics']}/metrics")
    if mode == "edge_unreachable":
        log(
            "ERR",
            'Failed to dial a quic connection error="failed to dial to edge with quic: timeout: no recent '
            'network activity" connIndex=0 event=0 ip=198.41.192.7',
        )
        log("ERR", 'Serve tunnel error error="context deadline exceeded" connIndex=0 event=0 ip=198.41.192.7')
    elif mode != "never_ready":
        time.sleep(0.2)
        with _lock:
            _state["ready"] = True
        log(
            "INF",
            "Registered tunnel connection connIndex=0 connection=fake event=0 ip=198.41.192.7 "
            "location=fra01 protocol=quic",
        )
        if fault("DIE_AFTER"):
            later(fault("DIE_AFTER"), lambda: die("fake: died on schedule"))
        if fault("UNREADY_AFTER"):
            later(fault("UNREADY_AFTER"), unready)

    stopping = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stopping.wait(0.2):
        pass
    log("INF", "Initiating graceful shutdown due to signal terminated ...")
    server.shutdown()
    edge.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
