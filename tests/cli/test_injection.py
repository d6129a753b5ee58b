"""Hostile bytes from a caller never reach the terminal as control characters (through the real CLI)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.http_client import post
from tests.support.net import free_port, wait_listening

OSC_TITLE = "\x1b]0;pwned\x07"
CSI_CLEAR = "\x1b[2J"
HOSTILE = {
    "message": {
        "type": f"tool-calls{OSC_TITLE}",
        "call": {"id": f"[/]c{CSI_CLEAR}all-1[red]"},
        "toolCallList": [
            {
                "id": "t1\r\n12:00:00 fake line",
                "type": "function",
                "function": {
                    "name": "evil\x08\x9b[link=https://evil.example]name[/link]\r\n12:00:00 fake line",
                    "arguments": {"a\x00": "b\x1b[31m"},
                },
            }
        ],
    }
}
CONTROL = [chr(c) for c in range(0x20) if chr(c) not in "\n"] + [chr(c) for c in range(0x7F, 0xA0)]


def _no_control(text: str) -> None:
    bad = sorted({repr(c) for c in text if c in CONTROL})
    assert not bad, f"control characters reached the output: {bad}"


async def test_stream_escapes_control_characters_even_when_refused(fake_app: tuple[str, AppState], cli: Any) -> None:
    base, _ = fake_app
    port = free_port()
    proc = cli(
        "listen", base + "/tool", "--port", str(port), "--secret", "s3cret", "--enforce-auth", "-v",
        env={"NO_COLOR": "1", "FORCE_COLOR": "", "COLUMNS": "200"},
    )  # fmt: skip
    await wait_listening(port)
    body = json.dumps(HOSTILE).encode()
    assert (await post(f"http://127.0.0.1:{port}/", body, headers={"X-Vapi-Secret": "s3cret"})).status == 200
    assert (await post(f"http://127.0.0.1:{port}/", body)).status == 401  # refused, still shown
    printed = await asyncio.to_thread(proc.read_stdout_until, "authentication failed")
    code, rest, err = await asyncio.to_thread(proc.interrupt)
    out = printed + rest
    assert code == 0
    _no_control(out)
    _no_control(err)
    assert "tool-calls\\x1b]0;pwned\\x07" in out  # shown escaped, not dropped
    assert "\n12:00:00 fake line" not in out  # no line can be forged
    assert out.count("auth✓") == 1 and out.count("auth✗") == 1

    for args in (("events",), ("events", "--limit", "5"), ("show", "last")):
        r = run_cli(*args, env={"NO_COLOR": "1", "COLUMNS": "200"})
        assert r.returncode == 0, (args, r.stderr)
        assert "Traceback" not in r.stderr
        _no_control(r.stdout + r.stderr)
        assert "[/]" in r.stdout, args  # markup in data is shown literally
    # the accepted exchange (row 1): the refused one keeps no body
    shown = run_cli("show", "1", env={"NO_COLOR": "1", "COLUMNS": "200"}).stdout
    assert "[link=https://evil.example]name[/link]" in shown and "\\x1b]0;pwned\\x07" in shown
    replay_env = {"NO_COLOR": "1", "COLUMNS": "200"}
    replayed = await asyncio.to_thread(
        run_cli, "replay", "1", "--to", base + "/tool", "--secret", "s3cret", env=replay_env
    )
    assert "Traceback" not in replayed.stderr and "replayed" in replayed.stdout, replayed.stderr
    _no_control(replayed.stdout + replayed.stderr)
    missing = run_cli("trigger", "--file", f"/nonexistent/{CSI_CLEAR}.json", env={"NO_COLOR": "1"})
    assert missing.returncode == 2 and "cannot read /nonexistent/\\x1b[2J.json" in missing.stderr
    _no_control(missing.stderr)
