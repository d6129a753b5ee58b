"""Do stale pooled app connections turn requests into 502s? Counts failures through `vapi-dev listen` (by hand).

Starts a raw asyncio app that answers each request and then closes the socket without saying
`Connection: close` (as an app with a very short keep-alive timeout does), and the real `vapi-dev listen`
console script in front of it (--tunnel none --no-journal, free ports). Then sends N sequential POSTs over
one keep-alive connection, and N more spread over C concurrent connections, and prints how many got a
reply other than 2xx, with the errors vapi-dev gave (#11 item 9: none should fail).

usage: python scripts/stale_pool.py [--requests 2000] [--concurrency 8] [-- listen args…]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from netutil import console_script, free_port, stop_all, wait_port  # scripts/netutil.py

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
BODY = json.dumps({"message": {"type": "status-update", "status": "in-progress"}}).encode()
REPLY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


def run_app(port: int) -> None:
    """One reply a connection, then the socket is closed (FIN, no `Connection: close`)."""

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            writer.write(REPLY)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(on_conn, "127.0.0.1", port, backlog=512)
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


def post_many(port: int, n: int, failures: collections.Counter[str]) -> None:
    """``n`` POSTs one after another on one keep-alive connection; non-2xx replies counted by their error
    (a caller's connection closed by vapi-dev, reopened by http.client, is counted too)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for i in range(n):
        conn.request("POST", f"/webhook/{i}", BODY, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.will_close:
            failures["(not a failure) vapi-dev closed the caller's connection"] += 1
        if not 200 <= resp.status < 300:
            try:
                detail = str(json.loads(body).get("detail", ""))
            except ValueError:
                detail = body[:80].decode(errors="replace")
            failures[f"{resp.status} {detail}"] += 1
    conn.close()


def run(port: int, n: int, concurrency: int) -> collections.Counter[str]:
    share = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]
    counts: list[collections.Counter[str]] = [collections.Counter() for _ in share]  # one a thread
    threads = [threading.Thread(target=post_many, args=(port, k, c)) for k, c in zip(share, counts, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts, collections.Counter())


def report(name: str, n: int, failures: collections.Counter[str], seconds: float) -> None:
    failed = sum(v for k, v in failures.items() if not k.startswith("(not"))
    print(f"{name}: {failed} of {n} POSTs got a non-2xx reply ({seconds:.1f} s)")
    for what, count in failures.most_common():
        print(f"    {count:5d}  {what}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000, help="POSTs in each variant")
    ap.add_argument("--concurrency", type=int, default=8, help="connections of the concurrent variant")
    ap.add_argument("listen_args", nargs="*", help="extra arguments for vapi-dev listen (after --)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-stale-"))
    app_port, dev_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([PY, __file__, "app", str(app_port)]))
        wait_port(app_port)
        env = {**os.environ, "VAPI_DEV_HOME": str(tmp / "home")}
        cmd = [console_script(), "listen", f"127.0.0.1:{app_port}", "--port", str(dev_port)]
        cmd += ["--tunnel", "none", "--no-journal", "--json", *args.listen_args]
        with open(tmp / "stderr", "wb") as err:
            dev = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=tmp)
        procs.append(dev)
        wait_port(dev_port)
        for name, concurrency in (
            ("sequential, one connection", 1),
            (f"{args.concurrency} connections", args.concurrency),
        ):
            start = time.monotonic()
            failures = run(dev_port, args.requests, concurrency)
            report(name, args.requests, failures, time.monotonic() - start)
        if dev.poll() is not None:
            print(f"vapi-dev exited early ({dev.returncode}): {(tmp / 'stderr').read_text(errors='replace')[-2000:]}")
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "app":
        run_app(int(sys.argv[2]))
    else:
        main()
