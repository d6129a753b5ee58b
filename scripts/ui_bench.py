"""Benchmark the inspector (run by hand): `vapi-dev ui` on a journal of 10,000 exchanges, and `listen --ui`
under scripts/bench's load against the line stream.

Everything runs through the installed console script in a pseudo-terminal of 120×40, as a developer would:
  1. first screen: from starting `vapi-dev ui` until the screen shows exchanges (and until all are loaded);
  2. key response: the median time from writing a key (↑, ↓, PgUp, End, a tab) to the end of the screen
     update it causes (the first byte and the last byte of the update, which ends at 100 ms of quiet);
  3. throughput: wrk at N connections against `listen` (the line stream) and `listen --ui`, each printing
     into its own pty and journaling; the ratio --ui / stream (target >= 0.9).

usage: python scripts/ui_bench.py [--exchanges 10000] [--keys 60] [--seconds 10] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench import TOOL_CALLS, wrk  # scripts/bench.py: the same payload and load
from netutil import console_script, free_port, stop_all, wait_port  # scripts/netutil.py

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ESCAPES = re.compile(rb"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
QUIET_S = 0.1  # an update has ended when the screen has been quiet this long (the details follow the list)
KEYS = [b"\x1b[A"] * 6 + [b"\x1b[B"] * 3 + [b"\x1b[5~", b"2", b"3", b"1", b"\x1b[F"]  # ↑ ↓ PgUp tabs End


def call_exchanges(n: int, start: float) -> list[Any]:
    """``n`` exchanges of whole calls as `trigger call` sends them (a call every 12 events), answered like a
    tool server answers, 4 ms each (a slow tool call now and then, and a missing tool result)."""
    import json

    from vapi_dev.exchange import Exchange
    from vapi_dev.vapi.contracts import check_reply
    from vapi_dev.vapi.messages import read_message, type_info
    from vapi_dev.vapi.samples import call_sequence

    out: list[Any] = []
    call = 0
    while len(out) < n:
        call += 1
        call_id = f"{(call * 2654435761) % 16**8:08x}-4c1e-9a7b-{call:012d}"  # distinct first 8 characters
        for payload in call_sequence(call_id, start_ms=int(start * 1000)):
            if len(out) == n:
                break
            body = json.dumps(payload).encode()
            ex = Exchange.begin("POST", "/webhook", "", [("Content-Type", "application/json")], body)
            ex.payload = payload
            ex.message_type, ex.call_id = read_message(payload)
            ex.received_at = payload["message"]["timestamp"] / 1000
            info = type_info(ex.message_type)
            ex.reply_needed, ex.deadline_s = info.reply_needed, info.deadline_s or ex.deadline_s
            ex.forward_url = "http://127.0.0.1:3000/webhook"
            ex.status = 200
            took = 0.004
            if ex.message_type == "tool-calls":
                ids = [c["id"] for c in payload["message"].get("toolCallList", [])]
                results = [{"toolCallId": i, "result": "Sunny, 21 C"} for i in ids] if call % 4 != 3 else []
                ex.response_body = json.dumps({"results": results}).encode()
                took = 0.180 if call % 4 == 0 else 0.042
            else:
                ex.response_body = b"{}"
            ex.response_headers = [("Content-Type", "application/json")]
            ex.response_bytes = len(ex.response_body)
            ex.finished = ex.started + took
            ex.problems = check_reply(ex)
            out.append(ex)
        start += 60
    return out


def fill_journal(path: Path, n: int) -> None:
    """A journal of ``n`` exchanges (see call_exchanges)."""
    from vapi_dev.journal.store import Journal

    journal = Journal(path, keep=n)
    exchanges = call_exchanges(n, time.time() - n * 5)
    for i in range(0, n, 1000):
        journal.append(exchanges[i : i + 1000])
    journal.close()


def screenshot(path: Path) -> None:
    """The README's picture: three calls in the inspector at 120×36, a tool call selected (Textual's SVG)."""
    import asyncio
    from datetime import datetime

    from vapi_dev.redact import Masker
    from vapi_dev.ui.app import InspectorApp
    from vapi_dev.ui.feed import Batch

    exchanges = call_exchanges(34, datetime(2026, 1, 2, 12, 0, 0).timestamp())

    async def run() -> None:
        app = InspectorApp(Masker())
        async with app.run_test(size=(120, 36)) as pilot:
            app.deliver(
                Batch(
                    exchanges=exchanges,
                    status="http://127.0.0.1:4242 → http://127.0.0.1:3000 · public https://quiet-fox-42.ngrok-free.app",
                )
            )
            await pilot.pause()
            target = next(ex for ex in reversed(exchanges) if ex.message_type == "tool-calls")
            app.event_list.select_id(target.id)
            await pilot.pause()
            await pilot.press("2")
            await pilot.pause(0.3)
            app.save_screenshot(str(path))

    asyncio.run(run())
    print(f"wrote {path}")


class Pty:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = pty.openpty()
        os.set_blocking(self.master, False)
        import fcntl
        import struct
        import termios

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=ROOT)
        os.close(slave)
        self.out = bytearray()

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:
            return b""
        self.out += chunk
        return chunk

    def wait_for(self, pattern: bytes, timeout: float = 30.0) -> float:
        start = time.monotonic()
        seen = 0
        while time.monotonic() - start < timeout:
            self.read(0.01)
            if re.search(pattern, ESCAPES.sub(b"", bytes(self.out[max(0, seen - 4096) :]))):
                return time.monotonic() - start
            seen = len(self.out)
        raise SystemExit(f"{pattern!r} never showed; last output: {ESCAPES.sub(b'', bytes(self.out[-800:]))!r}")

    def settle(self) -> None:
        while self.read(QUIET_S * 3):
            pass

    def key(self, key: bytes) -> tuple[float, float]:
        """(first byte, last byte) of the update after ``key``, in seconds."""
        self.settle()
        t0 = time.monotonic()
        os.write(self.master, key)
        first = last = None
        while True:
            chunk = self.read(QUIET_S if first is not None else 2.0)
            now = time.monotonic()
            if not chunk:
                break
            first = now if first is None else first
            last = now
        if first is None or last is None:
            return float("nan"), float("nan")
        return first - t0, last - t0

    def drain_forever(self) -> None:
        def run() -> None:
            while self.proc.poll() is None:
                self.read(0.5)
                if len(self.out) > 1 << 20:
                    del self.out[:]

        threading.Thread(target=run, daemon=True).start()


def bench_ui(tmp: Path, n: int, keys: int) -> None:
    home = tmp / "home"
    home.mkdir()
    journal = home / "journal.sqlite3"
    t = time.monotonic()
    fill_journal(journal, n)
    print(f"journal of {n:,} exchanges written in {time.monotonic() - t:.1f} s ({journal.stat().st_size / 1e6:.1f} MB)")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
    env.update(VAPI_DEV_HOME=str(home), TERM="xterm-256color")
    screen = Pty([console_script(), "ui"], env)
    try:
        screen.wait_for(rb"[1-9][0-9]* exchanges")
        first = time.monotonic() - screen.started  # from starting the console script
        screen.wait_for(rf"{n} exchanges".encode())
        loaded = time.monotonic() - screen.started
        shown = f"`vapi-dev ui` first screen with exchanges: {first:.2f} s (target <= 1 s)"
        print(f"{shown}; all {n:,} loaded: {loaded:.2f} s")
        firsts, lasts = [], []
        for i in range(keys):
            f, last = screen.key(KEYS[i % len(KEYS)])
            if f == f:  # not NaN: the key changed the screen (End at the end does not)
                firsts.append(f)
                lasts.append(last)
        first_ms, end_ms = statistics.median(firsts) * 1000, statistics.median(lasts) * 1000
        p90 = sorted(lasts)[int(len(lasts) * 0.9)] * 1000
        print(
            f"key response over {len(lasts)} keys that changed the screen (pty, the real console script): median "
            f"first byte {first_ms:.1f} ms, median end of update {end_ms:.1f} ms (target <= 50 ms); p90 {p90:.1f} ms"
        )
        os.write(screen.master, b"q")
        screen.proc.wait(10)
    finally:
        stop_all([screen.proc])


def bench_listen(tmp: Path, seconds: int, connections: int, rounds: int) -> None:
    body = tmp / "body.json"
    body.write_text(__import__("json").dumps(TOOL_CALLS))
    script = tmp / "post.lua"
    script.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f'local f = io.open("{body}", "rb")\nwrk.body = f:read("*a")\nf:close()\n'
    )
    app_port = free_port()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "scripts/bench_app.py"), str(app_port)]))
        wait_port(app_port)
        urls: dict[str, str] = {}
        for name, extra in (("line stream", []), ("--ui", ["--ui"])):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
            env.update(VAPI_DEV_HOME=str(tmp / f"home-{name[:2]}"), TERM="xterm-256color", COLUMNS="120")
            dev = Pty(
                [console_script(), "listen", f"127.0.0.1:{app_port}", "--port", str(port), "--tunnel", "none", *extra],
                env,
            )
            procs.append(dev.proc)
            dev.drain_forever()
            wait_port(port, proc=dev.proc)
            urls[name] = f"http://127.0.0.1:{port}/webhook"
            wrk(urls[name], script, 4, 2, 1)  # warm-up
        # Alternating runs, so that a neighbour's load on the machine falls on both alike.
        runs: dict[str, list[float]] = {name: [] for name in urls}
        for _ in range(rounds):
            for name, url in urls.items():
                runs[name].append(wrk(url, script, connections, seconds, 2)["rps"])
        for name, rps in runs.items():
            print(f"listen {name}: median {statistics.median(rps):,.0f} req/s at {connections} connections ({rps})")
        ratio = statistics.median(runs["--ui"]) / statistics.median(runs["line stream"])
        print(f"throughput ratio listen --ui / line stream (medians): {ratio:.2f} (target >= 0.90)")
    finally:
        stop_all(procs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exchanges", type=int, default=10_000)
    ap.add_argument("--keys", type=int, default=60)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3, help="wrk runs against each listener, alternating")
    ap.add_argument("--skip-listen", action="store_true", help="only the `vapi-dev ui` figures")
    ap.add_argument("--skip-ui", action="store_true", help="only the throughput figures")
    ap.add_argument("--screenshot", type=Path, metavar="SVG", help="only write the README's screenshot there")
    args = ap.parse_args()
    if args.screenshot:
        screenshot(args.screenshot)
        return
    tmp = Path(tempfile.mkdtemp(prefix="vapi-dev-ui-bench-"))
    try:
        if not args.skip_ui:
            bench_ui(tmp, args.exchanges, args.keys)
        if not args.skip_listen:
            if not shutil.which("wrk"):
                raise SystemExit("wrk is needed for the throughput figures: apt-get install wrk")
            bench_listen(tmp, args.seconds, args.connections, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
