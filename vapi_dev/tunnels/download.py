"""Getting a cloudflared binary: the official release for this OS/architecture, downloaded into the data
directory when `--tunnel cloudflared` is asked for and none is installed (never under `auto`), and the
`--version` check every cloudflared passes before vapi-dev runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vapi_dev.config import data_file
from vapi_dev.tunnels.base import TunnelError

RELEASES = "https://github.com/cloudflare/cloudflared/releases/latest/download"
# For tests only (a loopback server standing in for GitHub's releases); deliberately not a CLI option.
RELEASE_URL_ENV = "VAPI_DEV_CLOUDFLARED_RELEASE_URL"
# The oldest cloudflared vapi-dev accepts. The metrics server's /quicktunnel endpoint (where vapi-dev reads
# the public URL) came with TUN-4698 (cloudflare/cloudflared commit 59cae0f6, July 2021), first released in
# 2021.7.0; /ready and the account-less quick tunnel are older. An older binary would only offer the log
# banner and is years out of support, so it is refused with a sentence saying how to upgrade.
MIN_VERSION = (2021, 7, 0)
MAX_BYTES = 256 * 1024 * 1024  # the real binary is ~40 MB; anything far larger is not it
VERSION_TIMEOUT_S = 15.0
STALE_PART_S = 3600.0  # an older temp file is from a run that died mid-download, not from one running now
MANUAL = (
    "install cloudflared yourself (`brew install cloudflared`, your package manager, or a release from "
    "https://github.com/cloudflare/cloudflared/releases) and pass --cloudflared-path PATH, or pass --public-url URL"
)

# platform.system().lower() → {platform.machine().lower() → release asset}
ASSETS: dict[str, dict[str, str]] = {
    "linux": {
        "x86_64": "cloudflared-linux-amd64",
        "amd64": "cloudflared-linux-amd64",
        "aarch64": "cloudflared-linux-arm64",
        "arm64": "cloudflared-linux-arm64",
        "i386": "cloudflared-linux-386",
        "i686": "cloudflared-linux-386",
        "armv7l": "cloudflared-linux-arm",
        "armv6l": "cloudflared-linux-arm",
    },
    "darwin": {"x86_64": "cloudflared-darwin-amd64.tgz", "arm64": "cloudflared-darwin-arm64.tgz"},
    "windows": {
        "amd64": "cloudflared-windows-amd64.exe",
        "x86_64": "cloudflared-windows-amd64.exe",
        "x86": "cloudflared-windows-386.exe",
        "i386": "cloudflared-windows-386.exe",
    },
}

_VERSION = re.compile(r"cloudflared version (\d+)\.(\d+)\.(\d+)")
Report = Callable[[str], None]


def binary_name() -> str:
    return "cloudflared.exe" if os.name == "nt" else "cloudflared"


def managed_path() -> Path:
    """Where a downloaded cloudflared lives: ``bin/`` in vapi-dev's data directory ($VAPI_DEV_HOME)."""
    return data_file(f"bin/{binary_name()}")


def asset_name(system: str | None = None, machine: str | None = None) -> str | None:
    """The release file for this OS/architecture, or None when Cloudflare publishes none for it."""
    system = (system or platform.system()).lower()
    machine = (machine or platform.machine()).lower()
    return ASSETS.get(system, {}).get(machine)


def failed(why: str) -> str:
    return f"Couldn't download cloudflared ({why}): {MANUAL}."


class TooOld(TunnelError):
    """An installed cloudflared older than MIN_VERSION; ``what`` says so without the advice."""

    def __init__(self, path: str, version: tuple[int, ...], chosen: bool) -> None:
        have = ".".join(map(str, version))
        need = ".".join(map(str, MIN_VERSION))
        self.what = f"The cloudflared at {path} is version {have}, too old for vapi-dev (it needs {need} or later)"
        other = (
            "or drop --cloudflared-path (and VAPI_DEV_CLOUDFLARED_PATH) to use another"
            if chosen
            else "or run `vapi-dev listen --tunnel cloudflared` once, which then downloads a current one"
        )
        super().__init__(f"{self.what}: upgrade it (`brew upgrade cloudflared`, or `{path} update`), {other}.")


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = _VERSION.search(text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


async def run_version(path: str) -> tuple[int | None, str]:
    """(exit code, output) of ``path --version``; (None, why) when it could not run at all."""
    try:
        proc = await asyncio.create_subprocess_exec(
            path,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
    except OSError as exc:
        return None, exc.strerror or str(exc)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), VERSION_TIMEOUT_S)
    except asyncio.TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return None, f"`--version` gave no answer within {VERSION_TIMEOUT_S:g} s"
    finally:
        if proc.returncode is None:  # cancelled: leave no process behind
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
    return proc.returncode, out[:2000].decode("utf-8", "replace")


async def check_version(path: str, *, chosen: bool) -> tuple[int, int, int] | None:
    """The version of an installed cloudflared; TooOld when it is older than MIN_VERSION.

    A binary whose ``--version`` says nothing readable is let through: starting it gives its own error.
    """
    _code, out = await run_version(path)
    version = parse_version(out)
    if version is not None and version < MIN_VERSION:
        raise TooOld(path, version, chosen)
    return version


async def download(report: Report, asset: str | None = None) -> tuple[str, str]:
    """Download, unpack, check and install cloudflared at managed_path(): (path, version). TunnelError else.

    ``asset`` is the release file (default: the one for this OS/architecture).
    """
    asset = asset or asset_name()
    if asset is None:
        raise TunnelError(failed(f"Cloudflare publishes no build for {platform.system()} {platform.machine()}"))
    base = (os.environ.get(RELEASE_URL_ENV) or RELEASES).rstrip("/")
    target = managed_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for stale in target.parent.glob(".cloudflared-*.part*"):  # left by a run that was killed mid-download
            with contextlib.suppress(OSError):
                if time.time() - stale.stat().st_mtime > STALE_PART_S:
                    stale.unlink()
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".cloudflared-", suffix=".part" + target.suffix)
    except OSError as exc:
        raise TunnelError(failed(f"cannot write to {target.parent}: {exc.strerror or exc}")) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        await _fetch(f"{base}/{asset}", tmp, report)
        if asset.endswith(".tgz"):
            await asyncio.to_thread(_unpack, tmp)
        tmp.chmod(0o755)
        code, out = await run_version(str(tmp))
        if code is None:
            raise TunnelError(failed(f"the downloaded file does not run: {out}"))
        version = parse_version(out)
        if code != 0 or version is None:
            said = " ".join(out.split())[:120]
            raise TunnelError(failed(f"`cloudflared --version` failed (exit code {code}): {said!r}"))
        if version < MIN_VERSION:
            raise TunnelError(
                failed(f"the release is version {'.'.join(map(str, version))}, older than vapi-dev needs")
            )
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    shown = ".".join(map(str, version))
    report(f"cloudflared {shown} downloaded to {target}")
    return str(target), shown


async def _fetch(url: str, dest: Path, report: Report) -> None:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=600, sock_connect=15, sock_read=60)
    done = 0
    try:
        # trust_env: a proxy in HTTPS_PROXY (and NO_PROXY) applies, as it does for a browser download.
        async with aiohttp.ClientSession(timeout=timeout, trust_env=True) as session:
            async with session.get(url) as resp:
                if resp.status != 200:
                    raise TunnelError(failed(f"HTTP {resp.status} from {url}"))
                total = resp.content_length
                if total is not None and total > MAX_BYTES:
                    raise TunnelError(failed(f"{url} is {total} bytes, far more than cloudflared"))
                shown = -1
                with dest.open("wb") as fh:
                    async for chunk in resp.content.iter_chunked(256 * 1024):
                        done += len(chunk)
                        if done > MAX_BYTES:
                            raise TunnelError(failed(f"{url} sent more than {MAX_BYTES} bytes"))
                        await asyncio.to_thread(fh.write, chunk)
                        step = int(done * 100 / total) if total else done // (1024 * 1024)
                        if step != shown:
                            shown = step
                            report(progress_text(done, total))
                if total is not None and done != total:
                    raise TunnelError(failed(f"the download stopped after {done} of {total} bytes"))
    except aiohttp.ClientPayloadError:
        raise TunnelError(failed(f"the download was cut off after {done} bytes")) from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        raise TunnelError(failed(f"no connection to {url}: {type(exc).__name__}; no internet, or a proxy?")) from None


def progress_text(done: int, total: int | None, width: int = 20) -> str:
    """``Downloading cloudflared…  45% ━━━━━━━━━─────────── 12.3 MB/27.1 MB`` (the Spinner shows it)."""
    from vapi_dev.output.lines import human_bytes

    if not total:
        return f"Downloading cloudflared… {human_bytes(done)}"
    filled = min(width, done * width // total)
    bar = "━" * filled + "─" * (width - filled)
    return f"Downloading cloudflared… {done * 100 // total:3d}% {bar} {human_bytes(done)}/{human_bytes(total)}"


def _unpack(archive: Path) -> None:
    """Replace the .tgz at ``archive`` by the ``cloudflared`` file inside it (nothing else is extracted)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = next(
                (m for m in tar.getmembers() if m.isfile() and Path(m.name).name == "cloudflared"),
                None,
            )
            source = tar.extractfile(member) if member is not None else None
            if source is None:
                raise TunnelError(failed("the release archive holds no cloudflared"))
            data = source.read(MAX_BYTES + 1)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise TunnelError(failed(f"the release archive is damaged ({type(exc).__name__})")) from None
    if len(data) > MAX_BYTES:
        raise TunnelError(failed("the release archive holds an oversized cloudflared"))
    archive.write_bytes(data)
