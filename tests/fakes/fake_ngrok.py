#!/usr/bin/env python3
"""A stdlib-only stand-in for the ngrok v3 agent that pyngrok can launch (see tunnels.md §3).

Tests write this file to a temp dir with a ``#!<sys.executable>`` first line and pass it as
``ngrok_path``. It prints the agent's logfmt startup lines, serves the agent API on 127.0.0.1:0
and really forwards bytes from each endpoint's "public" port to its upstream.

FAKE_NGROK_SCENARIO selects the behaviour: default, no_token, invalid_token (ERR_NGROK_107),
malformed_token (ERR_NGROK_105), session_limit (ERR_NGROK_108), offline, silent,
endpoint_limit (ERR_NGROK_324), already_online (ERR_NGROK_334), old_agent (no /api/endpoints,
/api/tunnels works), ancient_agent (neither), web_busy. FAKE_NGROK_INTERVAL sets the pause
between repeated log lines (offline); FAKE_NGROK_PIDFILE, if set, gets each agent's PID.
The agent exits on its own when its parent dies or after FAKE_NGROK_MAX_LIFETIME seconds,
so a crashed test run never leaves it behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

SCENARIO = os.environ.get("FAKE_NGROK_SCENARIO", "default")
INTERVAL = float(os.environ.get("FAKE_NGROK_INTERVAL", "0.3"))
MAX_LIFETIME = float(os.environ.get("FAKE_NGROK_MAX_LIFETIME", "300"))
# Lines go through a queue and a writer thread, so an API reply never waits on a full stdout pipe.
_lines: queue.Queue[str] = queue.Queue(maxsize=20000)
_endpoints: dict[str, dict[str, Any]] = {}
_listeners: dict[str, socket.socket] = {}
_state_lock = threading.Lock()

TAIL = "\\r\\n\\r\\n{code}\\r\\n"  # the agent's err text ends like this, with literal backslash escapes
ERRORS = {
    "ERR_NGROK_4018": "authentication failed: Usage of ngrok requires a verified account and authtoken."
    "\\n\\nSign up for an account: https://dashboard.ngrok.com/signup\\nInstall your authtoken: "
    "https://dashboard.ngrok.com/get-started/your-authtoken",
    "ERR_NGROK_105": "authentication failed: The authtoken you specified does not look like a proper ngrok "
    "authtoken.\\nYour authtoken: {token}\\nInstructions to install your authtoken are on your ngrok "
    "dashboard:\\nhttps://dashboard.ngrok.com/get-started/your-authtoken",
    "ERR_NGROK_107": "authentication failed: The authtoken you specified is properly formed, but it is "
    "invalid.\\nYour authtoken: {token}\\nThis usually happens when:\\n    - You reset your authtoken\\n"
    "    - Your authtoken was for a team account that you were removed from",
    "ERR_NGROK_108": "authentication failed: Your account is limited to 3 simultaneous ngrok agent "
    "sessions.\\nYou can run multiple simultaneous tunnels from a single agent session by defining "
    "the tunnels in your agent configuration file and starting them with the command `ngrok start "
    "--all`.\\nActive ngrok agent sessions in region 'us':\\n  - ts_2abc (203.0.113.7)",
    "ERR_NGROK_324": "Your account may not run more than 3 endpoints over a single ngrok agent session."
    "\\nThe endpoints already running on this session are:\\nhttps://a.ngrok-free.app",
    "ERR_NGROK_334": "The endpoint '{url}' is already online. Either\\n1. stop your existing endpoint "
    "first, or\\n2. start both endpoints with `--pooling-enabled` to load balance between them.",
}


def _quote(value: str) -> str:
    if value and re.fullmatch(r"[\w.:/\[\]@,+-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def log(lvl: str, msg: str, **fields: str) -> None:
    """Print one logfmt line and flush it, as the agent does when stdout is not a TTY."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")
    parts = [f"t={now}", f"lvl={lvl}", f"msg={_quote(msg)}"]
    parts += [f"{key}={_quote(value)}" for key, value in fields.items()]
    with contextlib.suppress(queue.Full):
        _lines.put_nowait(" ".join(parts) + "\n")


def writer() -> None:
    while True:
        line = _lines.get()
        try:
            sys.stdout.write(line)
            sys.stdout.flush()
        except (BrokenPipeError, ValueError, OSError):
            pass
        _lines.task_done()


def fail(code: str, **values: str) -> None:
    err = ERRORS[code].format(**values) + TAIL.format(code=code)
    log("eror", "terminating with error", obj="app", err=err)
    log("crit", "command failed", err=err)
    exit_after_flush(1)


def exit_after_flush(code: int) -> None:
    _lines.join()
    time.sleep(0.3)  # the real agent takes a moment to shut down, too
    sys.exit(code)


def config_token(path: str | None) -> str | None:
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            match = re.match(r"\s*authtoken:\s*['\"]?([^'\"\s]+)", line)
            if match:
                return match.group(1)
    return None


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def serve_public(listener: socket.socket, host: str, port: int) -> None:
    """Accept on the endpoint's public port and pipe each connection to the upstream."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        try:
            upstream = socket.create_connection((host, port), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 14\r\nConnection: close\r\n\r\nERR_NGROK_8012")
            client.close()
            continue
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


def create_endpoint(kind: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    name = str(body.get("name") or f"ep-{secrets.token_hex(4)}")
    upstream_url = (body.get("upstream") or {}).get("url") if kind == "endpoints" else body.get("addr")
    if not upstream_url:
        return 400, {
            "error_code": 102,
            "status_code": 400,
            "msg": "invalid tunnel configuration",
            "details": {"err": "upstream is required"},
        }
    parts = urlsplit(upstream_url if "://" in str(upstream_url) else f"http://localhost:{upstream_url}")
    requested = body.get("url") or (f"https://{body['domain']}" if body.get("domain") else None)
    if SCENARIO in ("endpoint_limit", "already_online"):
        code = "ERR_NGROK_324" if SCENARIO == "endpoint_limit" else "ERR_NGROK_334"
        err = ERRORS[code].format(url=requested or "https://random.ngrok-free.app") + TAIL.format(code=code)
        return 502, {"error_code": 103, "status_code": 502, "msg": "failed to start tunnel", "details": {"err": err}}
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    local = f"http://127.0.0.1:{listener.getsockname()[1]}"
    threading.Thread(
        target=serve_public, args=(listener, parts.hostname or "localhost", parts.port or 80), daemon=True
    ).start()
    public = str(requested or local)
    uri = f"/api/{kind}/{name}"
    if kind == "endpoints":
        obj: dict[str, Any] = {
            "id": f"ep_{secrets.token_hex(8)}",
            "name": name,
            "uri": uri,
            "url": public,
            "upstream": {"url": upstream_url, "protocol": "http1"},
        }
    else:
        obj = {
            "ID": secrets.token_hex(8),
            "name": name,
            "uri": uri,
            "public_url": public,
            "proto": urlsplit(public).scheme,
            "config": {"addr": upstream_url, "inspect": True},
        }
    obj["metrics"] = {"conns": {"count": 0}, "http": {"count": 0}}
    obj["fake_local_url"] = local
    with _state_lock:
        _endpoints[name] = obj
        _listeners[name] = listener
    return 201, obj


class Api(BaseHTTPRequestHandler):
    """The agent's local API, in v3 (/api/endpoints) and v2 (/api/tunnels) shapes."""

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, status: int, obj: dict[str, Any] | None) -> None:
        data = b"" if obj is None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        log("info", "end", obj="web", pg=self.path, status=str(status))

    def _route(self) -> tuple[str, str] | None:
        match = re.fullmatch(r"/api/(endpoints|tunnels)(?:/([^/?]+))?/?", self.path.split("?")[0])
        if not match:
            return None
        kind, name = match.group(1), match.group(2) or ""
        old = (SCENARIO == "old_agent" and kind == "endpoints") or SCENARIO == "ancient_agent"
        return None if old else (kind, name)

    def _not_found(self) -> None:
        self._send(404, {"error_code": 100, "status_code": 404, "msg": "not found", "details": {}})

    def do_GET(self) -> None:
        log("info", "start", obj="web", pg=self.path)
        if self.path == "/api/status":
            self._send(
                200,
                {
                    "status": "online",
                    "agent_version": "3.99.0-fake",
                    "uri": "/api/status",
                    "session": {"status": "online"},
                },
            )
            return
        route = self._route()
        if route is None:
            self._not_found()
            return
        kind, name = route
        with _state_lock:
            items = list(_endpoints.values())
            one = _endpoints.get(name)
        if not name:
            self._send(200, {kind: items, "uri": f"/api/{kind}"})
        elif one is not None:
            self._send(200, one)
        else:
            self._not_found()

    def do_POST(self) -> None:
        log("info", "start", obj="web", pg=self.path)
        route = self._route()
        if route is None or route[1]:
            self._not_found()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        status, obj = create_endpoint(route[0], body)
        self._send(status, obj)

    def do_DELETE(self) -> None:
        log("info", "start", obj="web", pg=self.path)
        route = self._route()
        with _state_lock:
            found = route is not None and _endpoints.pop(route[1], None) is not None
            listener = _listeners.pop(route[1], None) if route else None
        if listener is not None:
            listener.close()
        if found:
            self._send(204, None)
        else:
            self._not_found()


def watch_parent(parent: int) -> None:
    deadline = time.monotonic() + MAX_LIFETIME
    while time.monotonic() < deadline and os.getppid() == parent:
        time.sleep(0.2)
    os._exit(0)


def start(args: list[str]) -> None:
    opts = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    threading.Thread(target=writer, daemon=True).start()
    if os.environ.get("FAKE_NGROK_PIDFILE"):  # lets tests check that no agent outlives a run
        with open(os.environ["FAKE_NGROK_PIDFILE"], "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
    if SCENARIO == "silent":
        time.sleep(MAX_LIFETIME)
        return
    # Failures are printed first: pyngrok stops reading as soon as the process has exited, so an
    # error line behind other lines could be missed (the real agent has the same race).
    token = opts.get("--authtoken") or os.environ.get("NGROK_AUTHTOKEN") or config_token(opts.get("--config"))
    if not token or SCENARIO == "no_token":
        fail("ERR_NGROK_4018")
    codes = {"invalid_token": "ERR_NGROK_107", "malformed_token": "ERR_NGROK_105", "session_limit": "ERR_NGROK_108"}
    if SCENARIO in codes:
        fail(codes[SCENARIO], token=str(token))
    if SCENARIO == "web_busy":
        log(
            "eror",
            "terminating with error",
            obj="app",
            err="failed to start web service: listen tcp 127.0.0.1:4040: bind: address already in use",
        )
        exit_after_flush(1)
    log("info", "no configuration paths supplied", obj="config")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    addr = f"127.0.0.1:{server.server_address[1]}"
    log("info", "starting web service", obj="web", addr=addr, allow_hosts="[]")
    if SCENARIO == "offline":
        while True:
            log(
                "eror",
                "failed to reconnect session",
                obj="tunnels.session",
                err='failed to dial ngrok server with address "connect.ngrok-agent.com:443": '
                "dial tcp: lookup connect.ngrok-agent.com: no such host",
            )
            time.sleep(INTERVAL)
    log("info", "client session established", obj="tunnels.session")
    log("info", "tunnel session started", obj="tunnels.session")
    while True:
        time.sleep(3600)


def main() -> None:
    args = sys.argv[1:]
    if args[:1] == ["--version"] or args[:1] == ["version"]:
        print("ngrok version 3.99.0-fake")
    elif args[:2] == ["config", "add-authtoken"] and len(args) > 2:
        print("Authtoken saved to configuration file: fake")
    elif args[:1] == ["start"]:
        start(args[1:])
    else:
        print(f"fake ngrok: unsupported command {args!r}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
