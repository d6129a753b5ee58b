#!/usr/bin/env python3
"""A stdlib-only stand-in for `cloudflared tunnel --url … --metrics …` (a quick tunnel).

Tests write this file with a ``#!<sys.executable>`` first line and pass it as --cloudflared-path.
It prints cloudflared-like log lines on stderr (with the boxed URL banner), serves ``/ready``,
``/quicktunnel`` and ``/metrics`` on the --metrics address, and forwards bytes from a loopback
"edge" port to the --url upstream, standing in for Cloudflare's edge. The public URL it reports is
``http://127.0.0.1:<edge port>`` (``/quicktunnel`` gives ``127.0.0.1:<edge port>`` as hostname).

FAKE_CLOUDFLARED_MODE: normal, fail_start (exits 1 at once with an error line), never_ready
(``/ready`` stays 503), rate_limited (logs a 429 and exits), banner_only (``/quicktunnel`` 404s, so
only the banner tells the URL). FAKE_CLOUDFLARED_PIDFILE, if set, gets the PID. The fake exits on
its own when its parent dies or after FAKE_CLOUDFLARED_MAX_LIFETIME seconds.
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

MODE = os.environ.get("FAKE_CLOUDFLARED_MODE", "normal")
MAX_LIFETIME = float(os.environ.get("FAKE_CLOUDFLARED_MAX_LIFETIME", "300"))
_state = {"ready": False, "hostname": ""}
_lock = threading.Lock()


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


def serve_edge(listener: socket.socket, host: str, port: int) -> None:
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
        threading.Thread(target=pipe, args=(upstream, conn), daemon=True).start()


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
        elif self.path == "/quicktunnel" and MODE != "banner_only":
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


def main() -> None:
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    if os.environ.get("FAKE_CLOUDFLARED_PIDFILE"):
        with open(os.environ["FAKE_CLOUDFLARED_PIDFILE"], "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
    argv = sys.argv[1:]
    if not argv or argv[0] != "tunnel":
        log("ERR", "fake cloudflared only knows `tunnel`")
        sys.exit(2)
    opts = parse(argv[1:])
    if "--no-autoupdate" not in opts or "--url" not in opts or "--metrics" not in opts:
        log("ERR", f"fake cloudflared missing a flag: {argv}")
        sys.exit(2)
    log("INF", "Thank you for trying Cloudflare Tunnel. Doing so, without a Cloudflare account, is a quick way")
    log("INF", "Requesting new quick Tunnel on trycloudflare.com...")
    if MODE == "fail_start":
        log("ERR", 'Couldn\'t start tunnel error="fake failure: no route to the edge"')
        sys.exit(1)
    if MODE == "rate_limited":
        log(
            "ERR",
            "Error unmarshaling QuickTunnel response: error code: 1015 error=\"invalid character 'e' looking "
            'for beginning of value" status_code="429 Too Many Requests"',
        )
        log("FTL", "failed to unmarshal quick Tunnel: invalid character 'e' looking for beginning of value")
        sys.exit(1)
    up = urlsplit(opts["--url"])
    edge = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    edge.bind(("127.0.0.1", 0))
    edge.listen(64)
    hostname = f"127.0.0.1:{edge.getsockname()[1]}"
    threading.Thread(target=serve_edge, args=(edge, up.hostname or "127.0.0.1", up.port or 80), daemon=True).start()
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
    if MODE != "never_ready":
        time.sleep(0.2)
        with _lock:
            _state["ready"] = True
        log(
            "INF",
            "Registered tunnel connection connIndex=0 connection=fake event=0 ip=198.41.192.7 "
            "location=fra01 protocol=quic",
        )

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
