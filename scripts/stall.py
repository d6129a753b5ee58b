"""Can one exchange stall another? Times small exchanges through `vapi-dev listen` while huge ones run (by hand).

Starts a local aiohttp app and the real `vapi-dev listen` console script in front of it (--tunnel none, its
live stream printed into a pseudo-terminal as in real use, the journal on). The app answers a tool-calls
request of N tool calls with N results (default 20,000: about 2 MB each way) and a one-call request with
one result. Small exchanges are timed on one keep-alive connection, first alone (the baseline), then
while other connections send the big exchange back to back (or --pause seconds apart: one big exchange being
checked at a time, as #11 item 2 puts it); p50/p99/max of both are printed (the small ones should stay
within 50 ms of their normal time). Back to back, the big ones keep both cores busy: what the small ones
wait for then is CPU (the app, the client and vapi-dev share two cores), not a stalled loop.

usage: python scripts/stall.py [--results 20000] [--calls N] [--seconds 10] [--rate 50] [--big 1] [--pause S]
       [-- listen args…]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from netutil import console_script, free_port, stop_all, wait_port  # scripts/netutil.py

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
HEADERS = {"Content-Type": "application/json"}


def tool_calls_body(n: int, call: str) -> bytes:
    calls = [
        {"id": f"toolcall_{i:06d}", "type": "function", "function": {"name": "lookup", "arguments": {"row": i}}}
        for i in range(n)
    ]
    message = {"type": "tool-calls", "call": {"id": call}, "toolCallList": calls, "artifact": {"messages": []}}
    return json.dumps({"message": message}).encode()


def results_body(n: int) -> bytes:
    pad = "x" * 60  # about 100 bytes a result: 20,000 results are about 2 MB
    return json.dumps({"results": [{"toolCallId": f"toolcall_{i:06d}", "result": pad} for i in range(n)]}).encode()


# -- the app and the load, each in a process of its own ----------------------------------------------


def run_app(port: int, n: int) -> None:
    """Answer /big with ``n`` results and anything else with one (the request is read, not parsed)."""
    from aiohttp import web

    big, small = results_body(n), results_body(1)  # made once: the app's own work stays small

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        body = big if request.path == "/big" else small
        return web.Response(body=body, content_type="application/json")

    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    web.run_app(app, host="127.0.0.1", port=port, print=None)


def run_load(port: int, calls: int, n: int, seconds: float, pause: float = 0.0) -> None:
    """Send the big exchange back to back (or ``pause`` seconds apart) on one keep-alive connection; print
    count and mean time."""
    body = tool_calls_body(calls, "call_big")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    took: list[float] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        start = time.perf_counter()
        conn.request("POST", "/big", body, HEADERS)
        resp = conn.getresponse()
        data = resp.read()
        took.append(time.perf_counter() - start)
        time.sleep(pause)
        if resp.status != 200 or len(data) < n * 50:
            print(json.dumps({"error": f"status {resp.status}, {len(data)} bytes"}), flush=True)
            return
    print(json.dumps({"count": len(took), "mean_ms": 1000 * statistics.fmean(took) if took else 0}), flush=True)


# -- the measurement ---------------------------------------------------------------------------------


def time_small(port: int, seconds: float, rate: float) -> list[float]:
    """Latencies (ms) of one-call tool-calls exchanges sent every 1/rate s on one keep-alive connection."""
    body = tool_calls_body(1, "call_small")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    out: list[float] = []
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < end:
        start = time.perf_counter()
        conn.request("POST", "/small", body, HEADERS)
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - start) * 1000)
        if resp.status != 200:
            raise SystemExit(f"a small exchange got {resp.status}")
        next_at += 1 / rate
        time.sleep(max(0.0, next_at - time.monotonic()))
    return out


def figures(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "n": len(ordered),
        "p50": ordered[len(ordered) // 2],
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=20_000, help="results in the big reply")
    ap.add_argument("--calls", type=int, help="tool calls in the big request (default: as many as --results)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    ap.add_argument("--rate", type=float, default=50.0, help="small exchanges a second")
    ap.add_argument("--big", type=int, default=1, help="connections sending the big exchange back to back")
    ap.add_argument(
        "--pause", type=float, default=0.0, help="seconds each big connection waits between its exchanges (0: none)"
    )
    ap.add_argument("listen_args", nargs="*", help="extra arguments for vapi-dev listen (after --)")
    args = ap.parse_args()
    calls = args.results if args.calls is None else args.calls
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-stall-"))
    app_port, dev_port = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([PY, __file__, "app", str(app_port), str(args.results)]))
        wait_port(app_port)
        master, slave = pty.openpty()
        env = {**os.environ, "VAPI_DEV_HOME": str(tmp / "home"), "COLUMNS": "160"}
        cmd = [console_script(), "listen", f"127.0.0.1:{app_port}", "--port", str(dev_port), "--tunnel", "none"]
        dev = subprocess.Popen([*cmd, *args.listen_args], stdin=slave, stdout=slave, stderr=slave, env=env)
        procs.append(dev)
        os.close(slave)
        printed = bytearray()

        def drain() -> None:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                printed.extend(chunk[-4096:] if len(chunk) > 4096 else chunk)
                del printed[:-65536]

        threading.Thread(target=drain, daemon=True).start()
        wait_port(dev_port)
        size = len(tool_calls_body(calls, "call_big")), len(results_body(args.results))
        print(
            f"big exchange: {calls:,} tool calls ({size[0] / 1e6:.1f} MB) answered with {args.results:,} "
            f"results ({size[1] / 1e6:.1f} MB); small exchanges at {args.rate:g}/s; {args.seconds:g} s a phase",
            flush=True,
        )
        time_small(dev_port, 1.0, args.rate)  # warm-up
        base = figures(time_small(dev_port, args.seconds, args.rate))
        loads = [
            subprocess.Popen(
                [
                    PY,
                    __file__,
                    "load",
                    str(dev_port),
                    str(calls),
                    str(args.results),
                    str(args.seconds + 1),
                    str(args.pause),
                ],
                stdout=subprocess.PIPE,
            )
            for _ in range(args.big)
        ]
        procs.extend(loads)
        time.sleep(0.5)  # the first big exchange is on its way
        loaded = figures(time_small(dev_port, args.seconds, args.rate))
        big: list[dict[str, Any]] = []
        for p in loads:
            out, _ = p.communicate(timeout=600)
            big.append(json.loads(out.decode().strip().splitlines()[-1]))
        print("\n| small exchanges | n | p50 | p99 | max |")
        print("|---|---|---|---|---|")
        for name, f in (("alone (baseline)", base), ("beside the big ones", loaded)):
            print(f"| {name} | {f['n']} | {f['p50']:.1f} ms | {f['p99']:.1f} ms | {f['max']:.1f} ms |")
        added = {k: loaded[k] - base[k] for k in ("p50", "p99", "max")}
        print(
            f"\nadded by the big exchanges: p50 {added['p50']:+.1f} ms, p99 {added['p99']:+.1f} ms, "
            f"max {added['max']:+.1f} ms (target: within 50 ms)"
        )
        for i, b in enumerate(big):
            if "error" in b:
                print(f"big connection {i}: FAILED, {b['error']}")
            else:
                print(f"big connection {i}: {b['count']} big exchanges, {b['mean_ms']:.0f} ms each on average")
        journal = tmp / "home" / "journal.sqlite3"
        if journal.exists():
            wal = Path(str(journal) + "-wal")
            total = journal.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
            print(f"journal on disk: {total / 1e6:.1f} MB")
        if dev.poll() is not None:
            print(f"vapi-dev exited early ({dev.returncode}); its last output:\n{printed.decode(errors='replace')}")
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "app":
        run_app(int(sys.argv[2]), int(sys.argv[3]))
    elif len(sys.argv) > 1 and sys.argv[1] == "load":
        run_load(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
    else:
        main()
