"""`vapi-dev listen --tunnel cloudflared` with no cloudflared installed, as a user runs it: the real CLI
downloads the "release" (the fake cloudflared served by a loopback aiohttp server, through the test-only
VAPI_DEV_CLOUDFLARED_RELEASE_URL) into $VAPI_DEV_HOME, says where it went, and listens through it end to end;
a later `auto` run finds it without downloading; on a real terminal the download shows a progress bar."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.cli.test_cloudflared_listen import BODY, assert_all_gone
from tests.cli.test_cloudflared_listen import fake as fake  # the fixture
from tests.cli.test_stream_width import SCRIPT, Pty
from tests.support.apps import AppState
from tests.support.http_client import post
from vapi_dev.tunnels import download

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# The loopback "release" serves the fake as a plain executable, which is what Linux's releases are.
pytestmark = pytest.mark.skipif(
    not (download.asset_name() or ".tgz").startswith("cloudflared-linux"),
    reason="the release stand-in serves a Linux-style binary",
)


@pytest.fixture
async def release(aiohttp_server: Any, fake: dict[str, str]) -> tuple[str, list[str]]:
    """(release URL serving the fake cloudflared as this platform's asset, the assets asked for)."""
    data = Path(fake["exe"]).read_bytes()
    asked: list[str] = []

    async def asset(request: web.Request) -> web.StreamResponse:
        asked.append(request.match_info["name"])
        # in 8 parts, 50 ms apart, as a download arrives: a progress display has frames to show on a busy box
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(data)
        await resp.prepare(request)
        step = -(-len(data) // 8)
        for i in range(0, len(data), step):
            await resp.write(data[i : i + step])
            await asyncio.sleep(0.05)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/{name}", asset)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}", asked


async def test_download_then_listen_end_to_end_then_auto_finds_it(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str], release: tuple[str, list[str]]
) -> None:
    base, state = fake_app
    url, asked = release
    env = {"VAPI_DEV_CLOUDFLARED_RELEASE_URL": url}
    proc = cli("listen", base, "--port", "0", "--json", "--tunnel", "cloudflared", env=env)
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["tunnel"] == "cloudflared" and "self-check through the public URL: ok" in ready["note"]
    target = Path(os.environ["VAPI_DEV_HOME"]) / "bin" / "cloudflared"
    said = await asyncio.to_thread(proc.read_json_line)
    assert said["event"] == "notice" and said["text"].startswith(f"downloaded cloudflared 2026.8.2 to {target}")
    r = await post(ready["public_url"] + "/hook", BODY)
    assert r.status == 200 and state.seen[-1]["path_qs"] == "/hook"
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    # not a terminal: plain lines, the progress once, then where it went
    assert "Downloading cloudflared…\n" in err and f"cloudflared 2026.8.2 downloaded to {target}\n" in err
    assert os.access(target, os.X_OK) and asked == [download.asset_name()]
    await assert_all_gone(fake["pidfile"])

    again = cli("listen", base, "--port", "0", "--json", env=env)  # auto: no token, cloudflared downloaded before
    ready = await asyncio.to_thread(again.read_json_line)
    assert ready["tunnel"] == "cloudflared" and ready["public_url"].startswith("http://127.0.0.1:")
    code, _out, err = await asyncio.to_thread(again.interrupt)
    assert code == 0, err
    assert asked == [download.asset_name()] and "Downloading" not in err
    await assert_all_gone(fake["pidfile"])


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs POSIX pseudo-terminals")
async def test_a_terminal_sees_a_progress_bar(
    fake_app: tuple[str, AppState],
    fake: dict[str, str],
    release: tuple[str, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not SCRIPT.exists():
        pytest.skip("the vapi-dev console script is not installed in this environment")
    base, _ = fake_app
    monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_RELEASE_URL", release[0])
    term = Pty(["listen", base, "--port", "0", "--tunnel", "cloudflared"], columns=100)
    done: Callable[[str], bool] = lambda text: "Waiting for events" in text  # noqa: E731
    try:
        text = ANSI.sub("", await asyncio.to_thread(term.read_until, done, 30.0))
        assert re.search(r"Downloading cloudflared… +\d+% \S+.* [\d.]+ kB/[\d.]+ kB", text), text
        assert "downloaded cloudflared 2026.8.2 to" in text and "self-check through the public URL: ok" in text
        assert await asyncio.to_thread(term.stop) == 0
    finally:
        term.kill()
    await assert_all_gone(fake["pidfile"])
