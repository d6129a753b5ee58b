"""Downloading cloudflared for `--tunnel cloudflared` when none is installed, against a loopback aiohttp server
standing in for GitHub's releases (VAPI_DEV_CLOUDFLARED_RELEASE_URL, for tests only)."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.fakes.fake_cloudflared import install
from tests.support.http_client import post
from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.tunnels import TunnelConfig, TunnelError, choose, download
from vapi_dev.tunnels.cloudflared import CloudflaredTunnel, cloudflared_installed, resolve_cloudflared_path
from vapi_dev.tunnels.fallback import LocalFallback

ASSET = download.asset_name()
# The loopback "release" serves the fake as a plain executable, which is what Linux's releases are.
pytestmark = pytest.mark.skipif(
    ASSET is None or ASSET.endswith((".tgz", ".exe")), reason="the release stand-in serves a Linux-style binary"
)
Serve = Callable[[Callable[[web.Request], Awaitable[web.StreamResponse]]], Awaitable[str]]


@pytest.fixture
def fake_bytes(tmp_path: Path) -> bytes:
    (tmp_path / "built").mkdir()
    return Path(install(tmp_path / "built" / "cloudflared")).read_bytes()


@pytest.fixture
def release(aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch) -> Serve:
    """``await release(handler)`` serves ``handler`` at /<asset> and points the release URL at it."""

    async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        app = web.Application()
        app.router.add_get("/{asset}", handler)
        server = await aiohttp_server(app)
        base = f"http://127.0.0.1:{server.port}"
        monkeypatch.setenv("VAPI_DEV_CLOUDFLARED_RELEASE_URL", base)
        return base

    return serve


def bytes_handler(data: bytes, seen: list[str] | None = None) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        if seen is not None:
            seen.append(request.match_info["asset"])
        return web.Response(body=data, content_type="application/octet-stream")

    return handle


def home_bin() -> Path:
    return Path(os.environ["VAPI_DEV_HOME"]) / "bin"


async def failed_download(release: Serve, handler: Any) -> str:
    await release(handler)
    with pytest.raises(TunnelError) as caught:
        await download.download(lambda _line: None)
    message = caught.value.message
    assert message.startswith("Couldn't download cloudflared (") and "\n" not in message
    assert "brew install cloudflared" in message and "--cloudflared-path" in message  # how to by hand
    assert not home_bin().exists() or list(home_bin().iterdir()) == []  # no binary, no temp file left
    return message


async def test_download_then_the_tunnel_runs_and_auto_finds_it(
    fake: tuple[str, Path], fake_bytes: bytes, release: Serve, receiver: str, made: list[CloudflaredTunnel]
) -> None:
    seen: list[str] = []
    await release(bytes_handler(fake_bytes, seen))
    lines: list[str] = []
    assert not cloudflared_installed(TunnelConfig())
    tunnel = choose(TunnelConfig(provider="cloudflared"), progress=lines.append)
    assert isinstance(tunnel, CloudflaredTunnel)
    made.append(tunnel)
    heard: list[TunnelChanged | Notice] = []
    tunnel.set_listener(heard.append)
    info = await tunnel.start(receiver)
    assert seen == [ASSET]
    target = home_bin() / "cloudflared"
    assert target.read_bytes() == fake_bytes and os.access(target, os.X_OK)
    assert [p.name for p in home_bin().iterdir()] == ["cloudflared"]  # the temp file was renamed
    assert lines[0] == "Downloading cloudflared…" and any("100%" in line for line in lines)
    assert lines[-1] == f"cloudflared 2026.8.2 downloaded to {target}"
    [said] = heard
    assert isinstance(said, Notice) and str(target) in said.text
    assert info is not None and (await post(info.public_url + "/x", b"via download")).status == 200
    await tunnel.stop()
    # a later run finds it without downloading (auto never downloads; it picks what is installed)
    assert resolve_cloudflared_path(TunnelConfig()) == (str(target), False)
    auto = choose(TunnelConfig())
    assert isinstance(auto, LocalFallback) and isinstance(auto.inner, CloudflaredTunnel)
    assert seen == [ASSET]


async def test_http_404_is_one_sentence(fake: tuple[str, Path], release: Serve) -> None:
    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="Not Found")

    assert "HTTP 404 from http://127.0.0.1:" in await failed_download(release, missing)


async def test_truncated_download_is_refused(fake: tuple[str, Path], fake_bytes: bytes, release: Serve) -> None:
    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        resp.content_length = len(fake_bytes) * 2
        await resp.prepare(request)
        await resp.write(fake_bytes)
        assert request.transport is not None
        request.transport.close()  # the connection drops halfway
        return resp

    message = await failed_download(release, cut)
    assert f"after {len(fake_bytes)} " in message


async def test_a_binary_whose_version_fails_is_refused(fake: tuple[str, Path], release: Serve) -> None:
    message = await failed_download(release, bytes_handler(b"#!/bin/sh\necho 'not today' >&2\nexit 3\n"))
    assert "`cloudflared --version` failed (exit code 3)" in message and "not today" in message


async def test_a_file_that_does_not_run_is_refused(fake: tuple[str, Path], release: Serve) -> None:
    message = await failed_download(release, bytes_handler(b"\x00\x01 not a program at all" * 100))
    assert "the downloaded file does not run" in message


async def test_a_too_old_release_is_refused(
    fake: tuple[str, Path], fake_bytes: bytes, release: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_CLOUDFLARED_VERSION", "2020.12.0")
    message = await failed_download(release, bytes_handler(fake_bytes))
    assert "2020.12.0, older than vapi-dev needs" in message


async def test_no_network_is_one_sentence(fake: tuple[str, Path]) -> None:
    with pytest.raises(TunnelError) as caught:  # the fixture's release URL is a closed loopback port
        await download.download(lambda _line: None)
    assert "no connection to http://127.0.0.1:" in caught.value.message and "no internet" in caught.value.message


async def test_a_macos_tarball_is_unpacked(fake: tuple[str, Path], fake_bytes: bytes, release: Serve) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cloudflared")
        info.size, info.mode = len(fake_bytes), 0o755
        tar.addfile(info, io.BytesIO(fake_bytes))
    await release(bytes_handler(buf.getvalue()))
    path, version = await download.download(lambda _line: None, asset="cloudflared-darwin-arm64.tgz")
    assert Path(path).read_bytes() == fake_bytes and version == "2026.8.2"


def test_release_names_per_platform() -> None:
    assert download.asset_name("Linux", "aarch64") == "cloudflared-linux-arm64"
    assert download.asset_name("Linux", "i686") == "cloudflared-linux-386"
    assert download.asset_name("Linux", "armv7l") == "cloudflared-linux-arm"
    assert download.asset_name("Darwin", "x86_64") == "cloudflared-darwin-amd64.tgz"
    assert download.asset_name("Windows", "AMD64") == "cloudflared-windows-amd64.exe"
    assert download.asset_name("Plan9", "mips") is None
    assert download.parse_version("cloudflared version 2026.8.2 (built 2026-08-20)") == (2026, 8, 2)
    assert download.progress_text(50, 100).startswith("Downloading cloudflared…  50% ━━━━━━━━━━──────────")


async def test_an_old_cloudflared_on_path_is_passed_over_for_a_current_one(
    fake: tuple[str, Path],
    fake_bytes: bytes,
    release: Serve,
    receiver: str,
    made: list[CloudflaredTunnel],
    tmp_path: Path,
) -> None:
    old = tmp_path / "bin" / "cloudflared"  # a distribution's old package, first on PATH
    old.write_text("#!/bin/sh\necho 'cloudflared version 2020.10.0 (built 2020-10-01-0000 UTC)'\n")
    old.chmod(0o755)
    with pytest.raises(TunnelError) as caught:  # auto never downloads: it says how to get a current one
        await choose(TunnelConfig(), local_fallback=False).start(receiver)
    assert f"The cloudflared at {old} is version 2020.10.0, too old" in caught.value.message
    assert "run `vapi-dev listen --tunnel cloudflared` once" in caught.value.message

    seen: list[str] = []
    await release(bytes_handler(fake_bytes, seen))
    for provider, said in (("cloudflared", "vapi-dev downloaded a current one"), ("auto", "using ")):
        tunnel = choose(TunnelConfig(provider=provider), local_fallback=False)
        assert isinstance(tunnel, CloudflaredTunnel)
        made.append(tunnel)
        heard: list[TunnelChanged | Notice] = []
        tunnel.set_listener(heard.append)
        info = await tunnel.start(receiver)
        assert info is not None and (await post(info.public_url + "/x", b"current")).status == 200
        [warning] = [e for e in heard if isinstance(e, Notice) and e.level == "warning"]
        assert (
            warning.text.startswith(f"The cloudflared at {old} is version 2020.10.0, too old") and said in warning.text
        )
        await tunnel.stop()
    assert seen == [ASSET]  # downloaded once, then found


async def test_a_temp_file_left_by_a_killed_download_is_cleaned_up(
    fake: tuple[str, Path], fake_bytes: bytes, release: Serve
) -> None:
    home_bin().mkdir(parents=True)
    stale, fresh = home_bin() / ".cloudflared-old.part", home_bin() / ".cloudflared-now.part"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"another run's, still downloading")
    os.utime(stale, (0, 0))
    await release(bytes_handler(fake_bytes))
    await download.download(lambda _line: None)
    assert sorted(p.name for p in home_bin().iterdir()) == [".cloudflared-now.part", "cloudflared"]
