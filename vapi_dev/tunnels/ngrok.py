"""The ngrok provider: pyngrok's blocking agent control, run off the event loop, with watchdog and health."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from pyngrok import conf, installer, ngrok, process
from pyngrok.exception import PyngrokError
from pyngrok.log import NgrokLog

from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.redact import mask_tokens
from vapi_dev.tunnels import errors
from vapi_dev.tunnels.base import Listener, Progress, TunnelConfig, TunnelError, TunnelInfo
from vapi_dev.tunnels.locate import find_token, normalise_domain, resolve_ngrok_path, upstream_url

WATCHDOG_MARGIN = 2.0  # beyond pyngrok's own startup_timeout, which only fires while the agent logs
AGENT_EXITED = "the ngrok agent exited"
_INSTALL_LOCK = threading.Lock()
_known_tokens: set[str] = set()


class _RedactTokens(logging.Filter):
    """pyngrok logs every agent line; the agent's auth errors echo the token, so mask it there too."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = mask_tokens(message, sorted(_known_tokens))
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


# Without a handler, Python's last-resort handler would print pyngrok's ERROR records (agent lines
# that may contain the token) straight to stderr, under our live display.
logging.getLogger("pyngrok").addHandler(logging.NullHandler())
logging.getLogger("pyngrok.process.ngrok").addFilter(_RedactTokens())


def install_agent(path: str, url: str | None, report: Callable[[str], None]) -> None:
    """Download the agent with pyngrok's installer (blocking), sending its progress to ``report``."""

    def forward(line: str) -> None:
        percent = re.search(r"(\d+)%", line)
        if percent:
            report(f"Downloading ngrok agent… {percent.group(1)}%")
        elif "Installing" in line:
            report("Installing ngrok agent…")

    # pyngrok writes progress straight to sys.stdout, which would tear through the live display;
    # swap its private printer for ours while we install (pinned pyngrok>=9.1,<10).
    with _INSTALL_LOCK:
        saved = installer._print_progress, installer._print_progress_enabled
        installer._print_progress_enabled = False
        installer._print_progress = forward
        try:
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            archive = installer._download_file(url or installer.get_ngrok_cdn_url("3"))
            installer._install_ngrok_archive(path, archive)
            with contextlib.suppress(OSError):
                os.remove(archive)
        finally:
            installer._print_progress, installer._print_progress_enabled = saved


class NgrokTunnel:
    """A pyngrok-managed agent with one HTTP endpoint to the receiver, restored when it is lost."""

    name = "ngrok"

    def __init__(
        self,
        cfg: TunnelConfig,
        *,
        progress: Progress | None = None,
        health_interval: float = 2.0,
        max_restarts: int = 5,
        restart_backoff: float = 1.0,
        download_url: str | None = None,
    ) -> None:
        self._cfg = cfg
        self._progress = progress
        self._health_interval = health_interval
        self._max_restarts = max_restarts
        self._restart_backoff = restart_backoff
        self._download_url = download_url
        self._token, found_in = find_token(cfg)
        if self._token:
            _known_tokens.add(self._token)
        # A token found in a non-default file only reaches the agent if we point it at that file.
        self._config_path = cfg.ngrok_config_path or (str(found_in) if found_in else None)
        self._path, self._path_chosen = resolve_ngrok_path(cfg)
        self._domain = normalise_domain(cfg.domain)
        self._version = "3"
        self._logs: deque[str] = deque(maxlen=20)
        self._listener: Listener | None = None
        self._upstream = ""
        self._public_url: str | None = None
        self._pconf: conf.PyngrokConfig | None = None
        self._health: asyncio.Task[None] | None = None

    # -- seam ------------------------------------------------------------------------------------

    def set_listener(self, cb: Listener) -> None:
        self._listener = cb

    async def start(self, local_url: str) -> TunnelInfo | None:
        if not self._token:
            raise TunnelError(errors.NO_TOKEN)
        self._upstream = upstream_url(local_url)
        await self._ensure_installed()
        info = await self._connect()
        self._health = asyncio.create_task(self._watch(), name="vapi-dev-ngrok-health")
        return info

    async def stop(self) -> None:
        if self._health is not None:
            self._health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health
            self._health = None
        pconf, url = self._pconf, self._public_url
        if pconf is not None and url is not None and process.is_process_running(self._path):
            # Best effort: closing the endpoint first frees it on ngrok's side at once.
            with contextlib.suppress(PyngrokError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.to_thread(ngrok.disconnect, url, pconf), 5)
        await self._kill_agent()
        self._public_url = None

    # -- introspection (tests, diagnostics) --------------------------------------------------------

    # pyngrok's process registry is private API (pinned pyngrok>=9.1,<10); the watchdog and
    # recovery tests fail first if it changes.
    @property
    def agent_pid(self) -> int | None:
        entry = process._current_processes.get(self._path)
        return entry.proc.pid if entry is not None else None

    @property
    def ngrok_path(self) -> str:
        return self._path

    # -- starting ----------------------------------------------------------------------------------

    async def _ensure_installed(self) -> None:
        if os.path.exists(self._path):
            return
        if self._path_chosen:
            raise TunnelError(errors.missing_binary(self._path))
        loop = asyncio.get_running_loop()
        progress = self._progress

        def report(text: str) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, text)

        report("Downloading ngrok agent…")
        try:
            await asyncio.to_thread(install_agent, self._path, self._download_url, report)
        except Exception:
            raise TunnelError(errors.DOWNLOAD_FAILED) from None
        report("ngrok agent installed.")

    def _make_pconf(self, version: str) -> conf.PyngrokConfig:
        pconf = conf.PyngrokConfig(
            ngrok_path=self._path,
            config_path=self._config_path,
            auth_token=self._cfg.ngrok_authtoken,  # None → pyngrok reads NGROK_AUTHTOKEN, else the file
            region=self._cfg.region,
            monitor_thread=True,
            log_event_callback=self._on_log,
            startup_timeout=max(1, math.ceil(self._cfg.startup_timeout)),
            config_version=version,
        )
        if version != "2" and pconf.auth_token:
            # pyngrok would pass the token as `--authtoken T`, where `ps` shows it to every user. The v3 agent
            # reads NGROK_AUTHTOKEN from the environment it inherits from us instead (v2 agents do not).
            os.environ["NGROK_AUTHTOKEN"] = pconf.auth_token
            pconf.auth_token = None
        return pconf

    def _on_log(self, log: NgrokLog) -> None:
        # Called on pyngrok's threads; deque.append is atomic.
        self._logs.append(log.line)

    async def _connect(self) -> TunnelInfo:
        try:
            return await self._connect_once(self._version)
        except _TooOld:
            if self._version == "2":
                raise TunnelError(errors.too_old(self._path)) from None
        self._version = "2"  # an agent without /api/endpoints may still speak the v2 tunnels API
        try:
            return await self._connect_once("2")
        except _TooOld:
            raise TunnelError(errors.too_old(self._path)) from None

    async def _connect_once(self, version: str) -> TunnelInfo:
        pconf = self._make_pconf(version)
        self._pconf = pconf
        port = self._upstream.rsplit(":", 1)[-1]
        options: dict[str, Any] = {}
        if self._domain:
            options["url" if version == "3" else "domain"] = (
                f"https://{self._domain}" if version == "3" else self._domain
            )
        name = f"vapi-dev-{port}-{secrets.token_hex(3)}"
        self._logs.clear()
        work = asyncio.ensure_future(asyncio.to_thread(ngrok.connect, self._upstream, "http", name, pconf, **options))
        try:
            done, _ = await asyncio.wait({work}, timeout=self._cfg.startup_timeout + WATCHDOG_MARGIN)
        except asyncio.CancelledError:
            self._kill_child()
            raise
        if not done:
            # pyngrok blocks on readline while a silent agent stays alive: kill the child so it returns.
            self._kill_child()
            await asyncio.wait({work}, timeout=5)
            work.add_done_callback(_consume)
            await self._kill_agent()
            secrets_ = [self._token, self._cfg.ngrok_authtoken]
            raise TunnelError(errors.start_timeout(self._cfg.startup_timeout, self._logs, secrets_))
        try:
            tunnel = work.result()
        except PyngrokError as exc:
            await self._kill_agent()  # an API error (e.g. endpoint limit) leaves the agent running
            if errors.looks_too_old(exc) and not errors.ngrok_code(exc):
                raise _TooOld() from None
            message = errors.explain(exc, domain=self._domain, ngrok_path=self._path, secrets=[self._token])
            raise TunnelError(message) from None
        public_url = str(tunnel.public_url)
        self._public_url = public_url
        return TunnelInfo(public_url=public_url, provider=self.name, inspect_url=tunnel.api_url)

    def _kill_child(self) -> None:
        entry = process._current_processes.get(self._path)
        if entry is not None and entry.proc.poll() is None:
            with contextlib.suppress(OSError):
                entry.proc.kill()

    async def _kill_agent(self) -> None:
        entry = process._current_processes.get(self._path)
        if entry is not None:
            self._kill_child()
            with contextlib.suppress(Exception):
                await asyncio.to_thread(entry.proc.wait, 5)  # reap, so no zombie keeps the PID
        if self._pconf is not None:
            with contextlib.suppress(PyngrokError, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.to_thread(ngrok.kill, self._pconf), 5)

    # -- health ------------------------------------------------------------------------------------

    def _emit(self, event: TunnelChanged | Notice) -> None:
        if self._listener is not None:
            self._listener(event)

    async def _problem(self) -> str | None:
        """Why the tunnel is not usable right now, or None when it is."""
        entry = process._current_processes.get(self._path)
        if entry is None or entry.proc.poll() is not None:
            return AGENT_EXITED
        kind = "endpoints" if self._version == "3" else "tunnels"
        try:
            data = await asyncio.to_thread(ngrok.api_request, f"{entry.api_url}/api/{kind}", "GET", None, None, 4)
        except (PyngrokError, OSError):
            return "the ngrok agent stopped answering"
        listed = data.get(kind) or []
        urls = {item.get("url") or item.get("public_url") for item in listed if isinstance(item, dict)}
        return None if self._public_url in urls else "the ngrok endpoint was closed"

    async def _watch(self) -> None:
        strikes = 0
        while True:
            await asyncio.sleep(self._health_interval)
            reason = await self._problem()
            if reason is None:
                strikes = 0
                continue
            strikes += 1
            # A dead agent is certain at once; a slow or odd API answer must repeat before we restart
            # (a restart may change the public URL).
            if reason != AGENT_EXITED and strikes < 2:
                continue
            strikes = 0
            if not await self._recover(reason):
                return

    async def _recover(self, reason: str) -> bool:
        lost = self._public_url
        self._emit(TunnelChanged(public_url=lost, up=False, reason=reason))
        for attempt in range(1, self._max_restarts + 1):
            await self._kill_agent()
            try:
                info = await self._connect()
            except TunnelError as exc:
                self._emit(Notice("warning", f"Restoring the ngrok tunnel failed (try {attempt}): {exc.message}"))
                await asyncio.sleep(min(30.0, self._restart_backoff * 2 ** (attempt - 1)))
                continue
            changed = "new public URL" if info.public_url != lost else "same public URL"
            self._emit(TunnelChanged(public_url=info.public_url, up=True, reason=changed))
            return True
        self._emit(
            Notice(
                "error",
                f"Gave up restoring the ngrok tunnel after {self._max_restarts} tries: "
                "restart vapi-dev, or run your own tunnel and pass --public-url URL.",
            )
        )
        return False


class _TooOld(Exception):
    """Internal signal: the agent lacks the API this config_version needs."""


def _consume(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
