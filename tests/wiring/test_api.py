"""The Vapi REST client's typed errors, and the `vapi-dev restore` command."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from aiohttp import web
from typer.testing import CliRunner

from tests.fakes.fake_vapi_api import FakeVapiApi
from tests.support.apps import serve
from tests.support.background import LoopThread
from tests.support.net import free_port
from vapi_dev.cli import restore as cli_wiring
from vapi_dev.vapi.api import (
    InvalidApiKey,
    MissingApiKey,
    ResourceNotFound,
    ValidationFailed,
    VapiApi,
    VapiApiError,
    VapiServerError,
    VapiUnreachable,
)
from vapi_dev.wiring.hook import WiringConfig, build

KEY = "sk-test-1234-abcd"


@pytest.fixture
async def fake() -> Any:
    f = FakeVapiApi(KEY)
    f.add("assistant", {"id": "a1", "name": "Bot", "server": {"url": "https://old.example.com", "headers": {}}})
    f.add("phone-number", {"id": "p1", "provider": "twilio"})
    await f.start()
    yield f
    await f.stop()


async def test_get_and_patch(fake: FakeVapiApi) -> None:
    async with VapiApi(KEY, fake.url + "/") as api:
        got = await api.get("assistant", "a1")
        assert got["name"] == "Bot"
        out = await api.patch("assistant", "a1", {"server": {"url": "https://new.example.com"}})
        assert out["server"] == {"url": "https://new.example.com"}


async def test_typed_errors(fake: FakeVapiApi) -> None:
    async with VapiApi(KEY, fake.url) as api:
        with pytest.raises(ResourceNotFound, match="assistant nope was not found"):
            await api.get("assistant", "nope")
        with pytest.raises(ValidationFailed, match="property id should not exist"):
            await api.patch("assistant", "a1", {"id": "a1", "server": None})
        with pytest.raises(ValidationFailed, match="provider must be one of"):
            await api.patch("phone-number", "p1", {"server": {"url": "https://x.example.com"}})
        fake.fail_patch["a1"] = 503
        with pytest.raises(VapiServerError, match="503"):
            await api.patch("assistant", "a1", {"name": "x"})
    bad = "sk-this-is-wrong-777"
    async with VapiApi(bad, fake.url) as api:
        with pytest.raises(InvalidApiKey) as ei:
            await api.get("assistant", "a1")
    assert bad not in str(ei.value) and "401" in str(ei.value)
    with pytest.raises(MissingApiKey, match="VAPI_API_KEY"):
        VapiApi(None, fake.url)
    with pytest.raises(MissingApiKey):
        VapiApi("   ", fake.url)
    with pytest.raises(InvalidApiKey) as ei2:
        VapiApi("sk-has\nnewline", fake.url)
    assert "newline" not in str(ei2.value)
    with pytest.raises(VapiApiError, match="not an http"):
        VapiApi(KEY, "ftp://x")


async def test_network_failure_is_one_clear_sentence() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    async with VapiApi(KEY, url) as api:
        with pytest.raises(VapiUnreachable) as ei:
            await api.get("assistant", "a1")
    assert ei.value.message.startswith(f"could not reach the Vapi API at {url}")
    assert KEY not in ei.value.message


async def test_timeout_is_bounded() -> None:
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/assistant/{id}", hang)
    runner, url = await serve(app)
    try:
        async with VapiApi(KEY, url, timeout=0.3) as api:
            with pytest.raises(VapiUnreachable, match=r"did not answer within 0\.3 s"):
                await api.get("assistant", "a1")
    finally:
        release.set()
        await runner.cleanup()


# -- the restore command (synchronous: CliRunner runs its own event loop) ---------------------


@pytest.fixture
def served() -> Iterator[tuple[LoopThread, FakeVapiApi]]:
    lt = LoopThread()
    f = FakeVapiApi(KEY)
    f.add("assistant", {"id": "a1", "name": "Bot", "server": {"url": "https://old.example.com", "timeoutSeconds": 9}})
    f.add("phone-number", {"id": "p1", "provider": "telnyx"})
    lt.run(f.start())
    yield lt, f
    lt.run(f.stop())
    lt.stop()


def app() -> typer.Typer:
    a = typer.Typer()
    cli_wiring.register(a)

    @a.callback()
    def _main() -> None:  # keeps "restore" a subcommand
        pass

    return a


def crash_run(lt: LoopThread, f: FakeVapiApi, state: Path) -> None:
    """Point both resources at a tunnel and then "die": on_stop never runs."""
    cfg = WiringConfig(assistants=("a1",), phone_numbers=("p1",), api_key=KEY, api_url=f.url, state_path=state)
    hook = build(cfg, lambda n: None)
    lt.run(hook.on_public_url("https://dead.ngrok.app"))
    assert f.get("phone-number", "p1")["server"] == {"url": "https://dead.ngrok.app"}


def test_restore_command(served: tuple[LoopThread, FakeVapiApi], tmp_path: Path) -> None:
    lt, f = served
    state = tmp_path / "wiring-state.json"
    runner = CliRunner()
    r = runner.invoke(app(), ["restore", "--state", str(state)], env={"VAPI_API_KEY": ""})
    assert r.exit_code == 0 and "Nothing to restore" in r.output  # no key needed for nothing

    crash_run(lt, f, state)
    bad = "sk-bad-key-55555"
    r = runner.invoke(app(), ["restore", "--state", str(state), "--api-key", bad])
    assert r.exit_code == 1 and "refused the API key" in r.output and bad not in r.output
    assert state.exists()

    r = runner.invoke(app(), ["restore", "--state", str(state)], env={"VAPI_API_KEY": ""})
    assert r.exit_code == 1 and "VAPI_API_KEY" in r.output

    r = runner.invoke(app(), ["restore", "--state", str(state)], env={"VAPI_API_KEY": KEY})
    assert r.exit_code == 0, r.output
    assert "assistant a1 (Bot): server.url restored to https://old.example.com" in r.output
    assert "phone number p1: server setting removed again" in r.output
    assert KEY not in r.output
    assert f.get("assistant", "a1")["server"] == {"url": "https://old.example.com", "timeoutSeconds": 9}
    assert "server" not in f.get("phone-number", "p1")
    assert not state.exists()


def test_restore_command_network_failure(served: tuple[LoopThread, FakeVapiApi], tmp_path: Path) -> None:
    lt, f = served
    state = tmp_path / "wiring-state.json"
    crash_run(lt, f, state)
    url = f"http://127.0.0.1:{free_port()}"
    r = CliRunner().invoke(app(), ["restore", "--state", str(state), "--api-key", KEY, "--vapi-api-url", url])
    assert r.exit_code == 1 and f"could not reach the Vapi API at {url}" in r.output
    assert state.exists()
