"""The stream at a terminal's width (#12): `vapi-dev listen` at 60, 80, 120 and 200 columns (COLUMNS, as a
pipe), and the console script in a real pseudo-terminal, resized while it runs.

Every exchange is one row no wider than the terminal; notices and problems wrap on words with a hanging
indent; wider terminals show more (sizes, the whole summary); only the timestamp is faint.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from tests.support.apps import AppState
from tests.support.http_client import post
from tests.support.net import free_port, wait_listening

SGR = re.compile(r"\x1b\[([0-9;]*)m")
CURSOR = re.compile(r"\x1b\[[0-9;?]*[A-Za-ln-z]")  # the escape sequences that are not SGR (cursor, erase)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STAMP = re.compile(r"^\d\d:\d\d:\d\d ")
TOOL_CALL = (
    b'{"message":{"type":"tool-calls","call":{"id":"call_9f3a2b"},"toolCallList":'
    b'[{"id":"tc1","type":"function","function":{"name":"get_weather","arguments":{"city":"Paris"}}}]}}'
)
STATUS = b'{"message":{"type":"status-update","call":{"id":"call_9f3a2b"},"status":"in-progress"}}'
SUMMARY = "get_weather(city=Paris) → Sunny, 21 C"  # what the fake app's /tool answers, summarised
LONG_PATH = "/hooks/" + "/".join(f"segment-{i}" for i in range(12))
# the notice `--exclude tool-call` gets (not a Vapi type): longer than 80 columns
NOTICE = "not a Vapi message type: tool-call (see `vapi-dev trigger --list`); non-Vapi requests are filtered as 'http'"
# what vapi-dev says of a tool-calls reply that is the request echoed back (vapi/contracts.py)
PROBLEMS = (
    "⚠ the reply is JSON but its Content-Type is 'application/octet-stream'; send application/json",
    "✗ the reply has no 'results' array; Vapi reports 'no result returned' to the model",
)


def dim_spans(row: str) -> tuple[str, list[int]]:
    """The text of a row with its SGR codes removed, and the positions of the characters shown faint."""
    text: list[str] = []
    faint: list[int] = []
    dim = False
    at = 0
    for m in SGR.finditer(row + "\x1b[m"):
        for ch in row[at : m.start()]:
            if dim:
                faint.append(len(text))
            text.append(ch)
        at = m.end()
        codes = [int(c) if c else 0 for c in m.group(1).split(";")] if m.group(1) else [0]
        i = 0
        while i < len(codes):
            code = codes[i]
            if code in (38, 48, 58):  # extended colour: 5;n or 2;r;g;b, whose figures are not SGR codes
                i += 3 if i + 1 < len(codes) and codes[i + 1] == 5 else 5
                continue
            if code == 0:
                dim = False
            elif code == 2:
                dim = True
            elif code == 22:
                dim = False
            i += 1
    return "".join(text), faint


def exchange_rows(rows: list[str]) -> list[str]:
    return [r for r in rows if STAMP.match(r)]


def check_rows(raw: str, width: int) -> list[str]:
    """The rows of ``raw`` (SGR and all): none wider than ``width``, and only timestamps faint."""
    rows = []
    for row in raw.replace("\r\n", "\n").split("\n"):
        text, faint = dim_spans(row)
        assert cell_len(text) <= width, (width, text)
        assert faint == (list(range(8)) if STAMP.match(text) else []), (text, faint)
        rows.append(text)
    assert any(STAMP.match(r) for r in rows)
    return rows


def rows_of(rows: list[str], first: str) -> list[str]:
    """The row starting ``first`` and the indented rows that continue it."""
    i = next(i for i, r in enumerate(rows) if r.startswith(first))
    out = [rows[i]]
    for r in rows[i + 1 :]:
        if not r.startswith(" ") or r.lstrip().startswith(("✗", "⚠")):
            break
        out.append(r)
    return out


def check_wrapped(rows: list[str], text: str, indent: int, width: int) -> None:
    """``text`` is shown whole, broken only between words, each row after the first ``indent`` columns in."""
    start = " " * (indent - 2) + text[:2]
    got = rows_of(rows, start)
    assert " ".join(r.strip() for r in got) == text, got
    assert all(r.startswith(" " * indent) and r[indent] != " " for r in got[1:]), got
    assert (len(got) > 1) is (cell_len(start) - 2 + cell_len(text) > width), (width, got)


@pytest.mark.parametrize(
    ("width", "colour"),
    [(60, "--color always"), (80, "FORCE_COLOR=1"), (120, "FORCE_COLOR=1"), (200, "--color always")],
)
async def test_every_line_fits_the_width(fake_app: tuple[str, AppState], cli: Any, width: int, colour: str) -> None:
    """Piped with COLUMNS, in colour (--color always, or FORCE_COLOR): rows, columns, wrapping, faint spans."""
    base, _ = fake_app
    port = free_port()
    args = ["listen", base, "--port", str(port), "--tunnel", "none", "--exclude", "tool-call"]
    env = {"COLUMNS": str(width), "NO_COLOR": "", "FORCE_COLOR": ""}
    if colour.startswith("--"):
        args += colour.split()
    else:
        name, value = colour.split("=")
        env[name] = value
    proc = cli(*args, env=env)
    await wait_listening(port)
    local = f"http://127.0.0.1:{port}"
    assert (await post(local + "/tool", TOOL_CALL)).status == 200
    assert (await post(local + "/tool", STATUS)).status == 200
    assert (await post(local + "/", TOOL_CALL)).status == 200  # echoed: not a tool-calls reply (problems)
    assert (await post(local + LONG_PATH, b"plain")).status == 200
    assert (await post(local + "/reset", TOOL_CALL)).status == 502
    code, out, err = await asyncio.to_thread(proc.interrupt)  # a clean stop prints everything held
    assert code == 0, err
    rows = check_rows(out, width)
    lines = exchange_rows(rows)
    assert len(lines) == 5, rows
    tool, status, echoed, plain, reset = lines
    assert all("B→" in r for r in lines) is (width >= 120)  # sizes
    if width < 100:  # whole milliseconds
        assert not any(re.search(r"\d\.\d ms", r) for r in lines), lines
    assert " tool-calls ↩ " in tool and " 200 " in tool and " ms" in tool
    if width >= 120:
        assert tool.endswith(SUMMARY)
    else:
        assert tool.endswith("…") and SUMMARY.startswith(tool.split(" ms ")[1][:-1])
    assert "status-update" in status and "in-prog" in status
    assert "POST /hooks/segment-0" in plain and (LONG_PATH in plain) is (width >= 200)  # else cut, with …
    assert " 502 " in reset
    check_wrapped(rows, NOTICE, 2, width)
    for problem in PROBLEMS:  # under the echoed tool call
        check_wrapped(rows[rows.index(echoed) :], problem, 6, width)
    check_wrapped(rows, "Waiting for events… (Ctrl-C to stop)", 4, width)


# -- a real pseudo-terminal --------------------------------------------------------------------------

SCRIPT = Path(sys.executable).with_name("vapi-dev")


def set_size(fd: int, columns: int, rows: int = 24) -> None:
    """The window size of a pseudo-terminal, as a terminal emulator sets it (and again on a resize)."""
    import fcntl
    import termios

    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class Pty:
    """The console script with a pseudo-terminal as its stdin, stdout and stderr; its output read here."""

    def __init__(self, args: list[str], columns: int) -> None:
        self.master, slave = os.openpty()
        set_size(slave, columns)
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
        env["TERM"] = "xterm-256color"
        self.proc = subprocess.Popen(
            [str(SCRIPT), *args], stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = b""

    def resize(self, columns: int) -> None:
        set_size(self.master, columns)

    def read_until(self, done: Callable[[str], bool], timeout: float = 15.0) -> str:
        """Read until ``done(text so far)`` (bounded wait); the text read so far."""
        deadline = time.monotonic() + timeout
        while not done(self.text()):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"not seen in time; output: {self.text()!r}")
        return self.text()

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: the other side is closed
            return False
        self.output += chunk
        return bool(chunk)

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 15
        while self._read(max(deadline - time.monotonic(), 0.01)) and time.monotonic() < deadline:
            pass
        return self.proc.wait(timeout=15)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        os.close(self.master)


def count_exchanges(n: int) -> Callable[[str], bool]:
    return lambda text: len(exchange_rows(ANSI.sub("", text).replace("\r", "").split("\n"))) >= n


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs POSIX pseudo-terminals")
async def test_a_real_terminal_is_followed_as_it_is_resized(fake_app: tuple[str, AppState]) -> None:
    """The console script in a pseudo-terminal of 80 columns, then 132: its width is read for every line."""
    if not SCRIPT.exists():
        pytest.skip("the vapi-dev console script is not installed in this environment")
    base, _ = fake_app
    port = free_port()
    term = Pty(["listen", base, "--port", str(port), "--tunnel", "none"], columns=80)
    try:
        await wait_listening(port)
        local = f"http://127.0.0.1:{port}"
        assert (await post(local + "/tool", TOOL_CALL)).status == 200
        assert (await post(local + "/", TOOL_CALL)).status == 200  # and its problems
        await asyncio.to_thread(term.read_until, count_exchanges(2))
        term.resize(132)
        assert (await post(local + "/tool", TOOL_CALL)).status == 200
        text = await asyncio.to_thread(term.read_until, count_exchanges(3))
        assert await asyncio.to_thread(term.stop) == 0
    finally:
        term.kill()
    assert SGR.search(text)  # a terminal: colour
    rows = [CURSOR.sub("", r) for r in text.replace("\r\n", "\n").split("\n")]
    plain = [dim_spans(r)[0] for r in rows]
    first, _echoed, last = exchange_rows(plain)
    resized = plain.index(last)
    check_rows("\n".join(rows[:resized]), 80)
    check_rows("\n".join(rows[resized:]), 132)
    for problem in PROBLEMS:
        check_wrapped(plain[:resized], problem, 6, 80)
    assert "B→" not in first and first.endswith("…") and SUMMARY.startswith(first.split(" ms ")[1][:-1])
    assert "B→" in last and last.endswith(SUMMARY)
