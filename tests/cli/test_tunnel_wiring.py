"""`vapi-dev listen` with a tunnel and auto-wiring, as a user runs it: the real CLI in a subprocess,
the real pyngrok driving the fake ngrok agent, and a local stand-in of the Vapi API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_vapi_api import FakeVapiApi
from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.http_client import post
from tests.support.net import free_port
from tests.support.ngrok import TOKEN, alive, pids, write_fake_agent

BODY = b'{"message":{"type":"status-update","status":"in-progress","call":{"id":"call_t"}}}'


@pytest.fixture
def agent_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    exe = write_fake_agent(tmp_path / "bin" / "ngrok")
    pidfile = tmp_path / "agent.pids"
    env = {"FAKE_NGROK_PIDFILE": str(pidfile), "FAKE_NGROK_INTERVAL": "0.2", "VAPI_DEV_NGROK_PATH": str(exe)}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("FAKE_NGROK_SCENARIO", raising=False)
    return {**env, "config": str(tmp_path / "ngrok.yml"), "pidfile": str(pidfile)}


async def test_ngrok_tunnel_end_to_end_and_no_agent_left(
    fake_app: tuple[str, AppState], cli: Any, agent_env: dict[str, str]
) -> None:
    base, state = fake_app
    proc = cli(
        "listen",
        base + "/tool",
        "--port",
        "0",
        "--json",
        "--tunnel",
        "ngrok",
        "--ngrok-config",
        agent_env["config"],
        env={"NGROK_AUTHTOKEN": TOKEN},
    )
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["event"] == "ready" and ready["tunnel"] == "ngrok"
    public = ready["public_url"]
    assert public and public != ready["local_url"]
    assert ready["inspect_url"].startswith("http://127.0.0.1:")
    assert "self-check through the public URL: ok" in ready["note"]
    # public port (the fake agent) → receiver → app → reply, all the way back
    r = await post(public + "/hook", BODY)
    assert r.status == 200 and r.body == b"{}"
    assert state.seen[-1]["path_qs"] == "/tool/hook"
    line = await asyncio.to_thread(proc.read_json_line)
    assert line["event"] == "exchange" and line["message_type"] == "status-update"
    agents = pids(Path(agent_env["pidfile"]))
    assert agents and any(alive(p) for p in agents)
    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert TOKEN not in out + err
    for _ in range(100):
        if not any(alive(p) for p in agents):
            break
        await asyncio.sleep(0.05)
    assert not any(alive(p) for p in agents), "an ngrok agent outlived vapi-dev"


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("invalid_token", "rejected the auth token"),
        ("session_limit", "maximum number of agents"),
    ],
)
def test_ngrok_errors_are_one_sentence_without_the_token(
    agent_env: dict[str, str], scenario: str, expected: str
) -> None:
    r = run_cli(
        "listen",
        "--port",
        "0",
        "--tunnel",
        "ngrok",
        "--ngrok-config",
        agent_env["config"],
        "--ngrok-timeout",
        "3",
        env={"NGROK_AUTHTOKEN": TOKEN, "FAKE_NGROK_SCENARIO": scenario},
    )
    assert r.returncode == 1, r.stderr
    assert expected in r.stderr.lower() or expected in r.stderr
    assert TOKEN not in r.stdout + r.stderr and "Traceback" not in r.stderr


def test_explicit_ngrok_without_token_is_an_error(agent_env: dict[str, str]) -> None:
    r = run_cli("listen", "--port", "0", "--tunnel", "ngrok", "--ngrok-config", agent_env["config"])
    assert r.returncode == 1
    assert "NGROK_AUTHTOKEN" in r.stderr and "Traceback" not in r.stderr


def test_auto_without_token_is_local_only_with_a_notice(agent_env: dict[str, str]) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "vapi_dev", "listen", "--port", "0", "--json", "--ngrok-config", agent_env["config"]],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    ready = json.loads(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    assert ready["public_url"] is None and ready["tunnel"] == "none"
    assert "NGROK_AUTHTOKEN" in ready["note"] and "--public-url" in ready["note"]
    assert proc.returncode == 0


# -- pointing Vapi at the tunnel ----------------------------------------------------------------


@pytest.fixture
async def vapi_api() -> Any:
    api = FakeVapiApi(key="k-test")
    await api.start()
    api.add(
        "assistant",
        {
            "id": "asst_1",
            "name": "Weather bot",
            "server": {
                "url": "https://prod.example/vapi",
                "credentialId": "cred_1",
                "timeoutSeconds": 12,
                "headers": {"X-Env": "prod"},
            },
        },
    )
    api.add("phone-number", {"id": "pn_1", "number": "+15555550199", "provider": "twilio"})
    yield api
    await api.stop()


async def test_listen_points_resources_and_restores_on_sigint(vapi_api: FakeVapiApi, cli: Any) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"  # a "tunnel you run yourself" that reaches the receiver
    before = vapi_api.get("assistant", "asst_1")
    proc = cli(
        "listen",
        "--port",
        str(port),
        "--json",
        "--public-url",
        public,
        "--assistant",
        "asst_1",
        "--phone-number",
        "pn_1",
        "--path",
        "/webhook",
        "--vapi-api-url",
        vapi_api.url,
        env={"VAPI_API_KEY": "k-test"},
    )
    ready = await asyncio.to_thread(proc.read_json_line)
    assert ready["public_url"] == public
    for _ in range(200):  # the PATCHes follow the ready line
        if len(vapi_api.patches()) >= 2:
            break
        await asyncio.sleep(0.02)
    server = vapi_api.get("assistant", "asst_1")["server"]
    assert server["url"] == public + "/webhook"
    assert {k: v for k, v in server.items() if k != "url"} == {k: v for k, v in before["server"].items() if k != "url"}
    assert vapi_api.get("phone-number", "pn_1")["server"]["url"] == public + "/webhook"
    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert vapi_api.get("assistant", "asst_1")["server"] == before["server"]
    assert vapi_api.get("phone-number", "pn_1").get("server") is None
    assert "k-test" not in out + err


async def test_kill_9_then_restore(vapi_api: FakeVapiApi, cli: Any) -> None:
    port = free_port()
    before = vapi_api.get("assistant", "asst_1")["server"]
    proc = cli(
        "listen",
        "--port",
        str(port),
        "--json",
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--assistant",
        "asst_1",
        "--vapi-api-url",
        vapi_api.url,
        env={"VAPI_API_KEY": "k-test"},
    )
    await asyncio.to_thread(proc.read_json_line)
    for _ in range(200):
        if vapi_api.patches():
            break
        await asyncio.sleep(0.02)
    assert vapi_api.get("assistant", "asst_1")["server"]["url"].startswith("http://127.0.0.1:")
    proc.proc.send_signal(signal.SIGKILL)
    await asyncio.to_thread(proc.proc.wait, 10)
    # a new listen warns about what was left behind, right after its ready line
    again = cli("listen", "--tunnel", "none", "--port", "0", "--json")
    assert (await asyncio.to_thread(again.read_json_line))["event"] == "ready"
    warning = await asyncio.to_thread(again.read_json_line)
    assert warning["event"] == "notice" and "vapi-dev restore" in warning["text"]
    await asyncio.to_thread(again.interrupt)
    r = await asyncio.to_thread(run_cli, "restore", env={"VAPI_API_KEY": "k-test"})
    assert r.returncode == 0, r.stderr
    assert vapi_api.get("assistant", "asst_1")["server"] == before
    assert "k-test" not in r.stdout + r.stderr


async def test_bad_key_changes_nothing_and_is_never_printed(vapi_api: FakeVapiApi) -> None:
    port = free_port()
    before = vapi_api.get("assistant", "asst_1")
    r = await asyncio.to_thread(
        run_cli,
        "listen",
        "--port",
        str(port),
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--assistant",
        "asst_1",
        "--vapi-api-url",
        vapi_api.url,
        env={"VAPI_API_KEY": "wrong-key-123"},
    )
    assert r.returncode == 1
    assert "wrong-key-123" not in r.stdout + r.stderr and "Traceback" not in r.stderr
    assert vapi_api.get("assistant", "asst_1") == before and vapi_api.patches() == []
    r = await asyncio.to_thread(
        run_cli,
        "listen",
        "--port",
        str(port),
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--assistant",
        "asst_nope",
        "--vapi-api-url",
        vapi_api.url,
        env={"VAPI_API_KEY": "k-test"},
    )
    assert r.returncode == 1 and "asst_nope" in r.stderr
    assert vapi_api.patches() == []


def test_wiring_needs_a_public_url() -> None:
    r = run_cli(
        "listen",
        "--tunnel",
        "none",
        "--assistant",
        "a1",
        "--port",
        "0",
        env={"VAPI_API_KEY": "k", "PATH": os.environ["PATH"]},
    )
    assert r.returncode == 2 and "need a public URL" in r.stderr


async def test_tunnel_recovery_announces_and_repoints(
    vapi_api: FakeVapiApi, cli: Any, agent_env: dict[str, str]
) -> None:
    proc = cli(
        "listen",
        str(free_port()),
        "--port",
        "0",
        "--json",
        "--tunnel",
        "ngrok",
        "--ngrok-config",
        agent_env["config"],
        "--assistant",
        "asst_1",
        "--vapi-api-url",
        vapi_api.url,
        env={"NGROK_AUTHTOKEN": TOKEN, "VAPI_API_KEY": "k-test"},
    )
    ready = await asyncio.to_thread(proc.read_json_line)
    first_url = ready["public_url"]
    for _ in range(200):
        if vapi_api.patches():
            break
        await asyncio.sleep(0.02)
    assert vapi_api.get("assistant", "asst_1")["server"]["url"] == first_url
    for pid in pids(Path(agent_env["pidfile"])):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    restored = None
    for _ in range(40):  # bounded: lines until the tunnel is back (lost, then restored)
        line = await asyncio.to_thread(proc.read_json_line, 20.0)
        if line["event"] == "tunnel" and line["up"]:
            restored = line
            break
    assert restored is not None and restored["public_url"]
    new_url = restored["public_url"]
    for _ in range(200):
        if vapi_api.get("assistant", "asst_1")["server"]["url"] == new_url:
            break
        await asyncio.sleep(0.02)
    assert vapi_api.get("assistant", "asst_1")["server"]["url"] == new_url
    # no app on that port, but the request crossed the new tunnel to vapi-dev
    assert (await post(new_url + "/", BODY)).status == 502
    code, _, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0, err
    assert vapi_api.get("assistant", "asst_1")["server"]["url"] == "https://prod.example/vapi"


async def test_org_prints_dashboard_steps_with_the_public_url(cli: Any) -> None:
    port = free_port()
    proc = cli(
        "listen",
        "--port",
        str(port),
        "--json",
        "--public-url",
        f"http://127.0.0.1:{port}",
        "--org",
        "--path",
        "/webhook",
    )
    assert (await asyncio.to_thread(proc.read_json_line))["event"] == "ready"
    hint = await asyncio.to_thread(proc.read_json_line)
    assert hint["event"] == "notice"
    assert "Organization → Server URL" in hint["text"] and f"http://127.0.0.1:{port}/webhook" in hint["text"]
    code, out, _ = await asyncio.to_thread(proc.interrupt)
    assert code == 0 and "put the organisation's server URL back" in out
