"""`vapi-dev listen --tunnel cloudflared` as a user runs it: the real CLI in a subprocess driving the fake
cloudflared (tests/fakes/fake_cloudflared.py), whose loopback "edge" stands in for Cloudflare."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_cloudflared import install
from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.http_client import post
from tests.support.net import free_port
from tests.support.ngrok import alive, pids

BODY = b'{"message":{"type":"status-update","status":"in-progress","call":{"id":"call_cf"}}}'


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The fake's path and pidfile; PATH without any real cloudflared, no ngrok token from the machine."""
    (tmp_path / "tools").mkdir()
    exe = install(tmp_path / "tools" / "cloudflared")
    pidfile = tmp_path / "cloudflared.pids"
    monkeypatch.setenv("FAKE_CLOUDFLARED_PIDFILE", str(pidfile))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{Path(sys.executable).parent}")
    for var in ("FAKE_CLOUDFLARED_MODE", "VAPI_DEV_CLOUDFLARED_PATH", "NGROK_AUTHTOKEN"):
        monkeypatch.delenv(var, raising=False)
    for var in ("DIE_AFTER", "DIE_AFTER_REQUESTS", "UNREADY_AFTER", "RESTART_MODE", "VERSION"):
        monkeypatch.delenv(f"FAKE_CLOUDFLARED_{var}", raising=False)
    # no download leaves the machine: a closed loopback port unless a test serves a release there
    monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_RELEASE_URL", f"http://127.0.0.1:{free_port()}")
    yield {"exe": exe, "pidfile": str(pidfile), "bin": str(tmp_path / "bin")}
    for pid in pids(pidfile):  # backstop only; tests assert the process is gone
        if alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


async def assert_all_gone(pidfile: str) -> None:
    found = pids(Path(pidfile))
    assert found, "the fake cloudflared never ran"
    for _ in range(100):
        if not any(alive(p) for p in found):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a cloudflared process outlived vapi-dev")


async def test_cloudflared_end_to_end_and_no_process_left(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    base, state = fake_app
    proc = cli(
        "listen", base + "/tool", "--port", "0", "--json", "--tunnel", "cloudflared", "--cloudflared-path", fake["exe"]
    )
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["event"] == "ready" and ready["tunnel"] == "cloudflared"
    public = ready["public_url"]
    assert public and public.startswith("http://127.0.0.1:") and public != ready["local_url"]
    assert "self-check through the public URL: ok" in ready["note"]
    r = await post(public + "/hook", BODY)  # fake edge → receiver → app → reply
    assert r.status == 200 and r.body == b"{}"
    assert state.seen[-1]["path_qs"] == "/tool/hook"
    line = await asyncio.to_thread(proc.read_json_line)
    assert line["event"] == "exchange" and line["message_type"] == "status-update"
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    await assert_all_gone(fake["pidfile"])


async def test_banner_shows_the_public_url(fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]) -> None:
    base, _ = fake_app
    proc = cli("listen", base, "--port", "0", "--tunnel", "cloudflared", env={"VAPI_DEV_CLOUDFLARED_PATH": fake["exe"]})
    out = await asyncio.to_thread(proc.read_stdout_until, "self-check", 15.0)
    assert "http://127.0.0.1:" in out and "ok" in out
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    await assert_all_gone(fake["pidfile"])


async def test_auto_picks_cloudflared_on_path_without_an_ngrok_token(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    Path(fake["bin"]).mkdir(exist_ok=True)
    os.symlink(fake["exe"], Path(fake["bin"]) / "cloudflared")
    base, _ = fake_app
    proc = cli("listen", base, "--port", "0", "--json")
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["tunnel"] == "cloudflared" and ready["public_url"].startswith("http://127.0.0.1:")
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    await assert_all_gone(fake["pidfile"])


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("never_ready", "did not connect to Cloudflare within 1 s"),
        ("rate_limited", "429 Too Many Requests"),
        ("fail_start", "fake failure: no route to the edge"),
        ("unreachable", "cloudflared cannot reach Cloudflare"),
    ],
)
async def test_cloudflared_errors_are_one_sentence(fake: dict[str, str], mode: str, needle: str) -> None:
    r = await asyncio.to_thread(
        run_cli,
        "listen",
        "--port",
        "0",
        "--tunnel",
        "cloudflared",
        "--cloudflared-path",
        fake["exe"],
        "--tunnel-timeout",
        "1",
        env={"FAKE_CLOUDFLARED_MODE": mode},
    )
    assert r.returncode == 1, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr
    await assert_all_gone(fake["pidfile"])


def test_missing_cloudflared_is_downloaded_or_says_how_to_install(fake: dict[str, str], tmp_path: Path) -> None:
    r = run_cli("listen", "--port", "0", "--tunnel", "cloudflared", "--json")  # the "release" port is closed
    assert r.returncode == 1
    assert "error: Couldn't download cloudflared (no connection to http://127.0.0.1:" in r.stderr
    assert "brew install cloudflared" in r.stderr and "--cloudflared-path" in r.stderr
    assert "Traceback" not in r.stderr and not r.stdout.strip()
    r = run_cli("listen", "--port", "0", "--tunnel", "cloudflared", "--cloudflared-path", str(tmp_path / "no"))
    assert r.returncode == 1 and f"There is no cloudflared at {tmp_path / 'no'}" in r.stderr


async def test_auto_falls_back_to_local_only_when_cloudflared_fails(
    fake_app: tuple[str, AppState], cli: Any, fake: dict[str, str]
) -> None:
    Path(fake["bin"]).mkdir(exist_ok=True)
    os.symlink(fake["exe"], Path(fake["bin"]) / "cloudflared")
    base, state = fake_app
    proc = cli("listen", base, "--port", "0", "--json", env={"FAKE_CLOUDFLARED_MODE": "fail_start"})
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["event"] == "ready" and ready["tunnel"] == "none" and ready["public_url"] is None
    warning = await asyncio.to_thread(proc.read_json_line)
    assert warning["event"] == "notice" and warning["level"] == "warning"
    text = warning["text"]
    assert "local only" in text and "fake failure: no route to the edge" in text
    assert "NGROK_AUTHTOKEN" in text and "--tunnel cloudflared" in text and "--public-url" in text
    r = await post(ready["local_url"] + "/hook", BODY)  # still forwarding locally
    assert r.status == 200 and state.seen
    code, _out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    await assert_all_gone(fake["pidfile"])
    # explicitly asked for, the same failure stops the run (a second run of the fake: its RESTART_MODE)
    fails = {"FAKE_CLOUDFLARED_RESTART_MODE": "fail_start"}
    r = await asyncio.to_thread(run_cli, "listen", "--port", "0", "--tunnel", "cloudflared", env=fails)
    assert r.returncode == 1 and "fake failure: no route to the edge" in r.stderr
