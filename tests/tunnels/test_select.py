"""Provider selection, the manual and none providers, token/binary discovery and the public self-check."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.ngrok import TOKEN, make_receiver
from vapi_dev.redact import mask_tokens as redact
from vapi_dev.tunnels import ManualTunnel, NoTunnel, TunnelConfig, TunnelError, TunnelInfo, choose, errors, self_check
from vapi_dev.tunnels.locate import find_token, normalise_domain, resolve_ngrok_path, upstream_url
from vapi_dev.tunnels.ngrok import NgrokTunnel


@pytest.fixture(autouse=True)
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No ngrok token or agent from the machine running the tests can leak in."""
    for var in ("NGROK_AUTHTOKEN", "VAPI_DEV_NGROK_PATH", "PYNGROK_NGROK_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    return tmp_path


# -- choose() ---------------------------------------------------------------------------------------


async def test_public_url_implies_manual() -> None:
    tunnel = choose(TunnelConfig(public_url="https://my-tunnel.example.com/"))
    assert isinstance(tunnel, ManualTunnel) and tunnel.name == "manual"
    info = await tunnel.start("http://127.0.0.1:4242")
    assert info == TunnelInfo(public_url="https://my-tunnel.example.com", provider="manual")
    await tunnel.stop()


@pytest.mark.parametrize("bad", ["my-tunnel.example.com", "ftp://example.com", "https://", "not a url"])
def test_manual_url_must_be_http(bad: str) -> None:
    with pytest.raises(TunnelError) as caught:
        choose(TunnelConfig(provider="manual", public_url=bad))
    assert "--public-url must be an http(s) URL" in caught.value.message


@pytest.mark.parametrize(
    ("cfg", "needle"),
    [
        (TunnelConfig(provider="manual"), "--tunnel manual needs --public-url"),
        (TunnelConfig(provider="ngrok", public_url="https://x.example.com"), "cannot be combined"),
        (TunnelConfig(provider="none", public_url="https://x.example.com"), "cannot be combined"),
        (TunnelConfig(provider="localtunnel"), "Unknown tunnel"),
    ],
)
def test_contradictory_settings_are_errors(cfg: TunnelConfig, needle: str) -> None:
    with pytest.raises(TunnelError) as caught:
        choose(cfg)
    assert needle in caught.value.message


async def test_none_is_local_only() -> None:
    tunnel = choose(TunnelConfig(provider="none"))
    assert isinstance(tunnel, NoTunnel) and tunnel.notice is None
    assert await tunnel.start("http://127.0.0.1:4242") is None
    await tunnel.stop()


def test_auto_without_token_is_local_only_with_a_how_to() -> None:
    tunnel = choose(TunnelConfig())
    assert isinstance(tunnel, NoTunnel)
    assert tunnel.notice == errors.NO_TOKEN_NOTICE
    for needed in ("export NGROK_AUTHTOKEN=", "dashboard.ngrok.com/get-started/your-authtoken", "--public-url URL"):
        assert needed in tunnel.notice


def test_auto_with_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGROK_AUTHTOKEN", TOKEN)
    assert isinstance(choose(TunnelConfig()), NgrokTunnel)


def test_auto_with_token_option() -> None:
    assert isinstance(choose(TunnelConfig(ngrok_authtoken=TOKEN)), NgrokTunnel)


def test_explicit_ngrok_is_chosen_even_without_token() -> None:
    # The missing token is reported by start(), as an error rather than a silent fallback.
    assert isinstance(choose(TunnelConfig(provider="ngrok")), NgrokTunnel)


# -- token discovery --------------------------------------------------------------------------------


def test_token_in_default_v3_config(clean_home: Path) -> None:
    path = clean_home / "xdg" / "ngrok" / "ngrok.yml"
    path.parent.mkdir(parents=True)
    path.write_text(f'version: "3"\nagent:\n    authtoken: {TOKEN}\n')
    assert find_token(TunnelConfig()) == (TOKEN, path)
    assert isinstance(choose(TunnelConfig()), NgrokTunnel)


def test_token_in_legacy_v2_config(clean_home: Path) -> None:
    path = clean_home / "home" / ".ngrok2" / "ngrok.yml"
    path.parent.mkdir(parents=True)
    path.write_text(f"authtoken: '{TOKEN}'\nregion: eu\n")
    assert find_token(TunnelConfig()) == (TOKEN, path)


def test_given_config_path_is_the_only_one_read(clean_home: Path) -> None:
    default = clean_home / "xdg" / "ngrok" / "ngrok.yml"
    default.parent.mkdir(parents=True)
    default.write_text(f"authtoken: {TOKEN}\n")
    given = clean_home / "mine.yml"
    given.write_text('version: "3"\nagent:\n  # authtoken: commented-out\n  region: us\n')
    assert find_token(TunnelConfig(ngrok_config_path=str(given))) == (None, None)
    assert isinstance(choose(TunnelConfig(ngrok_config_path=str(given))), NoTunnel)


def test_option_beats_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NGROK_AUTHTOKEN", "from-env")
    assert find_token(TunnelConfig(ngrok_authtoken="from-option")) == ("from-option", None)


# -- agent binary discovery -------------------------------------------------------------------------


def write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_ngrok_path_option_then_env(clean_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_DEV_NGROK_PATH", "/opt/ngrok/ngrok")
    assert resolve_ngrok_path(TunnelConfig(ngrok_path="/usr/local/bin/ngrok")) == ("/usr/local/bin/ngrok", True)
    assert resolve_ngrok_path(TunnelConfig()) == ("/opt/ngrok/ngrok", True)


def test_pyngrok_shim_on_path_is_skipped(clean_home: Path) -> None:
    write_exe(clean_home / "bin" / "ngrok", "#!/usr/bin/python3\nfrom pyngrok.ngrok import main\nmain()\n")
    managed = clean_home / "xdg" / "ngrok" / "ngrok"
    assert resolve_ngrok_path(TunnelConfig()) == (str(managed), False)


def test_real_agent_on_path_is_used(clean_home: Path) -> None:
    agent = write_exe(clean_home / "bin" / "ngrok", "\x7fELF pretend binary\n")
    assert resolve_ngrok_path(TunnelConfig()) == (str(agent), False)


# -- small helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("local", "upstream"),
    [
        ("http://127.0.0.1:4242", "http://127.0.0.1:4242"),
        ("http://0.0.0.0:4242/", "http://127.0.0.1:4242"),
        ("http://localhost:8000", "http://127.0.0.1:8000"),
        ("http://[::]:5000", "http://[::1]:5000"),
    ],
)
def test_upstream_is_an_ip(local: str, upstream: str) -> None:
    assert upstream_url(local) == upstream


def test_domain_normalised() -> None:
    assert normalise_domain("https://quiet-otter.ngrok-free.dev/") == "quiet-otter.ngrok-free.dev"
    assert normalise_domain("quiet-otter.ngrok-free.dev") == "quiet-otter.ngrok-free.dev"
    assert normalise_domain(None) is None


def test_redact_masks_known_and_echoed_tokens() -> None:
    text = f"Your authtoken: {TOKEN}\\nstart --authtoken {TOKEN} and other-secret"
    cleaned = redact(text, ["other-secret", None])
    assert TOKEN not in cleaned and "other-secret" not in cleaned


# -- self_check -------------------------------------------------------------------------------------


async def test_self_check_ok_through_the_receiver(aiohttp_server: Any) -> None:
    seen: list[str] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        seen.append(request.headers.get("ngrok-skip-browser-warning", ""))
        return await handler(request)  # type: ignore[no-any-return]

    app = make_receiver()
    app.middlewares.append(record)
    server = await aiohttp_server(app)
    ok, detail = await self_check(f"http://127.0.0.1:{server.port}/")
    assert ok, detail
    assert "reaches vapi-dev" in detail and seen == ["1"]


async def test_self_check_wrong_answer(aiohttp_server: Any) -> None:
    async def other(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "nonce": "someone-else"})

    app = web.Application()
    app.router.add_get("/__vapi-dev/ping/{nonce}", other)
    server = await aiohttp_server(app)
    ok, detail = await self_check(f"http://127.0.0.1:{server.port}")
    assert not ok and "not from this vapi-dev" in detail


async def test_self_check_not_found(aiohttp_server: Any) -> None:
    server = await aiohttp_server(web.Application())
    ok, detail = await self_check(f"http://127.0.0.1:{server.port}")
    assert not ok and "HTTP 404" in detail


async def test_self_check_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ok, detail = await self_check(f"http://127.0.0.1:{port}", timeout=2)
    assert not ok and "could not reach" in detail
