"""Benchmark `vapi-dev listen` against the app directly and a minimal aiohttp proxy (run by hand).

Measures, with wrk on loopback: median latency at 1 connection and throughput at 32 connections for
(a) the app directly, (b) scripts/minimal_proxy.py, (c) `vapi-dev listen` printing its live stream into a
pseudo-terminal (as in real use) and journaling; then the peak RSS of vapi-dev after >= 50,000 exchanges.

usage: python scripts/bench.py [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from netutil import free_port, stop_all, wait_port  # scripts/netutil.py

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
TOOL_CALLS = {
    "message": {
        "type": "tool-calls",
        "timestamp": 1735732810000,
        "call": {"id": "call_bench_1"},
        "toolCallList": [
            {
                "id": "toolcall_123",
                "type": "function",
                "function": {"name": "get_weather", "arguments": {"city": "Paris"}},
            }
        ],
        "artifact": {"messages": []},
        "assistant": {"name": "Weather bot"},
    }
}


def to_ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def wrk(url: str, script: Path, connections: int, seconds: int, threads: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = to_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50_ms": p50, "requests": total, "non2xx": int(errors.group(1)) if errors else 0}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--only-dev", action="store_true", help="skip the app and proxy runs (profiling)")
    ap.add_argument("listen_args", nargs="*", help="extra arguments for vapi-dev listen (after --)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-bench-"))
    body = tmp / "body.json"
    body.write_text(json.dumps(TOOL_CALLS))
    script = tmp / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    app_port, proxy_port, dev_port = free_port(), free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([PY, str(ROOT / "scripts/bench_app.py"), str(app_port)]))
        wait_port(app_port)
        procs.append(
            subprocess.Popen(
                [PY, str(ROOT / "scripts/minimal_proxy.py"), str(proxy_port), f"http://127.0.0.1:{app_port}"]
            )
        )
        wait_port(proxy_port)
        # vapi-dev prints into a pseudo-terminal, as it would for a developer, and journals as usual.
        master, slave = pty.openpty()
        env = {**os.environ, "VAPI_DEV_HOME": str(tmp / "home"), "COLUMNS": "160"}
        env.pop("NO_COLOR", None)
        dev = subprocess.Popen(
            [PY, "-m", "vapi_dev", "listen", f"127.0.0.1:{app_port}", "--port", str(dev_port), *args.listen_args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=ROOT,
        )
        procs.append(dev)
        os.close(slave)
        printed = [0]

        def drain() -> None:
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                printed[0] += len(chunk)

        threading.Thread(target=drain, daemon=True).start()
        wait_port(dev_port)
        print(f"vapi-dev RSS when idle: {rss_mb(dev.pid):.1f} MB", flush=True)
        targets = {"app directly": app_port, "minimal aiohttp proxy": proxy_port, "vapi-dev listen": dev_port}
        results: dict[str, dict[str, float]] = {}
        dev_requests = 0
        if args.only_dev:
            targets = {"vapi-dev listen": dev_port}
        for name, port in targets.items():
            url = f"http://127.0.0.1:{port}/webhook"
            wrk(url, script, 4, 2, 1)  # warm-up
            lat = wrk(url, script, 1, args.seconds, 1)
            if port == dev_port:
                print(
                    f"vapi-dev RSS after the 1-connection run: {rss_mb(dev.pid):.1f} MB "
                    f"(peak {peak_rss_mb(dev.pid):.1f})",
                    flush=True,
                )
            thr = wrk(url, script, args.connections, args.seconds, 2)
            if port == dev_port:
                print(
                    f"vapi-dev RSS after the {args.connections}-connection run: {rss_mb(dev.pid):.1f} MB "
                    f"(peak {peak_rss_mb(dev.pid):.1f})",
                    flush=True,
                )
            results[name] = {"p50_ms": lat["p50_ms"], "rps": thr["rps"], "non2xx": lat["non2xx"] + thr["non2xx"]}
            if name == "vapi-dev listen":
                dev_requests = lat["requests"] + thr["requests"]
        while dev_requests < 50_000:
            dev_requests += wrk(f"http://127.0.0.1:{dev_port}/webhook", script, args.connections, 5, 2)["requests"]
        rss = peak_rss_mb(dev.pid)
        if args.only_dev:
            print(results, f"rss {rss:.1f} MB")
            return
        base = results["app directly"]["p50_ms"]
        proxy = results["minimal aiohttp proxy"]
        mine = results["vapi-dev listen"]
        print(f"\n| target | median latency, 1 conn | added vs app | throughput, {args.connections} conns | non-2xx |")
        print("|---|---|---|---|---|")
        for name, r in results.items():
            print(
                f"| {name} | {r['p50_ms']:.3f} ms | {r['p50_ms'] - base:+.3f} ms | {r['rps']:,.0f} req/s "
                f"| {int(r['non2xx'])} |"
            )
        print(f"\nthroughput ratio vapi-dev / minimal proxy: {mine['rps'] / proxy['rps']:.2f} (target >= 0.90)")
        added_mine, added_proxy = mine["p50_ms"] - base, proxy["p50_ms"] - base
        print(
            f"added median latency: vapi-dev {added_mine:.3f} ms vs minimal proxy {added_proxy:.3f} ms "
            f"(target <= proxy + 0.200 ms: {'met' if added_mine <= added_proxy + 0.2 else 'NOT met'})"
        )
        print(f"peak RSS of vapi-dev after {dev_requests:,} exchanges: {rss:.1f} MB (target <= 100 MB)")
        print(f"terminal output drained: {printed[0]:,} bytes")
    finally:
        stop_all(procs)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
