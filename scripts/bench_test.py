"""Benchmark `vapi-dev test` on 1,000 recorded exchanges against a plain aiohttp client loop (run by hand).

Writes 125 recorded calls of 8 exchanges (trigger's whole call: status updates, speech, transcript,
conversation update, tool calls, end-of-call report) as export fixtures, starts a fast local app (this
script with --app: it answers every tool call by its id and acknowledges the rest), then times, alternating,
several rounds of:

- the plain loop: one aiohttp session sending the same 1,000 requests one after another, reading each reply,
  timed in this process, and as a whole script (a Python subprocess importing aiohttp, reading the
  bodies from a file, sending them), which is what the whole CLI compares with;
- the engine's run: vapi_dev.testing.run.run_files over the loaded fixtures (re-signing, contracts,
  deadlines, expectations), in this process;
- the whole CLI: `vapi-dev test DIR --against URL` as a subprocess (start-up, loading, run, report).

Reports the medians and the ratios: engine run / plain loop, whole CLI / plain script (target: at most 1.5).

usage: python scripts/bench_test.py [--rounds 5] [--calls 125] [--jobs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from netutil import console_script, free_port, stop_all, wait_port  # scripts/netutil.py

TARGET = 1.5
PLAIN_SCRIPT = """
import asyncio, sys, aiohttp
async def main():
    bodies = open(sys.argv[2], "rb").read().splitlines()
    async with aiohttp.ClientSession() as session:
        for body in bodies:
            async with session.post(sys.argv[1], data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                assert r.status == 200
asyncio.run(main())
"""


async def _serve(port: int) -> None:
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        if b'"tool-calls"' not in body:
            return web.Response(body=b"{}", content_type="application/json")
        calls = json.loads(body)["message"]["toolCallList"]
        results = [{"toolCallId": c["id"], "result": "Sunny, 21 C"} for c in calls]
        return web.Response(body=json.dumps({"results": results}).encode(), content_type="application/json")

    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


def write_fixtures(folder: Path, calls: int) -> int:
    """``calls`` whole calls as export fixtures (recorded replies included); how many exchanges."""
    from vapi_dev.exchange import Exchange
    from vapi_dev.journal.fixtures import fixture
    from vapi_dev.vapi.samples import call_sequence

    n = 0
    for i in range(calls):
        cid = f"call_bench_{i:04d}"
        exchanges = []
        for payload in call_sequence(cid):
            body = json.dumps(payload, separators=(",", ":")).encode()
            ex = Exchange.begin("POST", "/", "", [("Content-Type", "application/json")], body)
            ex.record_reply(200, [("Content-Type", "application/json")], b"{}")
            exchanges.append(ex)
        (folder / f"{cid}.json").write_text(json.dumps(fixture(cid, exchanges), indent=2))
        n += len(exchanges)
    return n


async def plain_loop(url: str, bodies: list[bytes]) -> float:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        started = time.perf_counter()
        for body in bodies:
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
                await resp.read()
                assert resp.status == 200
        return time.perf_counter() - started


async def engine_run(url: str, folder: Path, jobs: int) -> tuple[float, float, int]:
    """(seconds loading, seconds running, cases passed)."""
    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import load_all
    from vapi_dev.testing.run import Options, run_files
    from vapi_dev.vapi.auth import AuthConfig

    started = time.perf_counter()
    files, bad = load_all([folder], can_sign=False)
    loaded = time.perf_counter()
    assert not bad, bad
    opts = Options(against=url, auth=AuthConfig(), mask=Masker(), jobs=jobs)
    results = await run_files(files, opts)
    done = time.perf_counter()
    return loaded - started, done - loaded, sum(o.passed for outs in results for o in outs)


def plain_script(url: str, bodies: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", PLAIN_SCRIPT, url, str(bodies)], check=True)
    return time.perf_counter() - started


def whole_cli(url: str, folder: Path, jobs: int) -> float:
    env = {**os.environ, "VAPI_DEV_HOME": str(folder.parent / "home"), "NO_COLOR": "1"}
    started = time.perf_counter()
    r = subprocess.run(
        [console_script(), "test", str(folder), "--against", url, "--jobs", str(jobs)],
        capture_output=True,
        text=True,
        env=env,
    )
    took = time.perf_counter() - started
    if r.returncode != 0:
        raise SystemExit(f"vapi-dev test failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=125, help="recorded calls of 8 exchanges each")
    ap.add_argument("--jobs", type=int, default=1, help="vapi-dev test --jobs (the plain loop is sequential)")
    ap.add_argument("--app", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.app:
        asyncio.run(_serve(args.app))
        return
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-bench-test-"))
    folder = tmp / "fixtures"
    folder.mkdir()
    total = write_fixtures(folder, args.calls)
    from vapi_dev.journal.fixtures import load_requests

    bodies = [r.body for f in sorted(folder.glob("*.json")) for r in load_requests(f.read_bytes())]
    lines = tmp / "bodies.ndjson"  # compact JSON: one body a line
    lines.write_bytes(b"\n".join(bodies) + b"\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    app = subprocess.Popen([sys.executable, __file__, "--app", str(port)])
    try:
        wait_port(port)
        asyncio.run(plain_loop(url, bodies[:50]))  # warm up the app
        plain, script, load, run, cli = [], [], [], [], []
        for _ in range(args.rounds):
            plain.append(asyncio.run(plain_loop(url, bodies)))
            script.append(plain_script(url, lines))
            lo, ru, passed = asyncio.run(engine_run(url, folder, args.jobs))
            if passed != total:
                raise SystemExit(f"only {passed} of {total} cases passed")
            load.append(lo)
            run.append(ru)
            cli.append(whole_cli(url, folder, args.jobs))
    finally:
        stop_all([app])  # type: ignore[list-item]
    base, base_script = statistics.median(plain), statistics.median(script)
    print(f"{total} recorded exchanges, {args.calls} fixture files, {args.rounds} rounds (medians), --jobs {args.jobs}")
    rows = [
        ("plain aiohttp client loop", base, None),
        ("vapi-dev test: engine run", statistics.median(run), base),
        ("vapi-dev test: engine load + run", statistics.median(a + b for a, b in zip(load, run, strict=True)), base),
        ("plain loop as a whole script", base_script, None),
        ("vapi-dev test: whole CLI", statistics.median(cli), base_script),
    ]
    for name, seconds, against in rows:
        if against is None:
            print(f"  {name:34s} {seconds * 1000:8.0f} ms")
            continue
        ratio = seconds / against
        mark = "ok" if ratio <= TARGET else f"over the {TARGET}x target"
        print(f"  {name:34s} {seconds * 1000:8.0f} ms  {ratio:5.2f}x  {mark}")


if __name__ == "__main__":
    main()
