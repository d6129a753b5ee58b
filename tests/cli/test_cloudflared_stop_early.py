"""Stopping `vapi-dev listen --tunnel cloudflared` while the tunnel is still starting, as a service manager or
`kill` does it: one SIGTERM stops the run at once (not after --tunnel-timeout, and with no "did not connect"
error), and a second SIGTERM, which quits at once, leaves no cloudflared behind. The fake is told not to
watch its parent here, since the real cloudflared does not: a process left behind stays visible."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

from tests.cli.test_cloudflared_listen import assert_all_gone
from tests.cli.test_cloudflared_listen import fake as fake  # the fixture
from tests.support.apps import AppState
from tests.support.net import wait_until
from tests.support.ngrok import alive, pids

NEVER_READY = {"FAKE_CLOUDFLARED_MODE": "never_ready", "FAKE_CLOUDFLARED_NO_PARENT_WATCH": "1"}


def _listen(cli: Any, base: str, exe: str) -> Any:
    return cli(
        "listen", base, "--port", "0", "--json", "--tunnel", "cloudflared", "--cloudflared-path", exe,
        "--tunnel-timeout", "60", env=NEVER_READY,
    )  # fmt: skip


async def test_one_sigterm_while_the_tunnel_starts_stops_at_once_without_an_error(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    proc = _listen(cli, fake_app[0], fake["exe"])
    await wait_until(lambda: bool(pids(Path(fake["pidfile"]))), timeout=20)
    code, _, err = await asyncio.to_thread(proc.interrupt, signal.SIGTERM, 20)  # far less than the 60 s
    assert code == 0, err
    assert "did not connect" not in err and "error:" not in err
    await assert_all_gone(fake["pidfile"])


async def test_a_second_sigterm_while_the_tunnel_starts_leaves_no_cloudflared(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    proc = _listen(cli, fake_app[0], fake["exe"])
    await wait_until(lambda: bool(pids(Path(fake["pidfile"]))), timeout=20)
    found = pids(Path(fake["pidfile"]))
    proc.proc.send_signal(signal.SIGTERM)
    proc.proc.send_signal(signal.SIGTERM)
    code, _, _ = await asyncio.to_thread(proc.interrupt, None, 20)
    assert code in (0, 130)
    try:
        await assert_all_gone(fake["pidfile"])
    finally:  # never leave one for the rest of the suite
        for pid in found:
            if alive(pid):
                import os

                os.kill(pid, signal.SIGKILL)
