"""The cloudflared provider: a Cloudflare quick tunnel (trycloudflare.com) run as a child process, watched.

The public URL comes from the metrics server's ``/quicktunnel`` (the boxed banner on stderr is the
fallback); the tunnel is usable once ``/ready`` answers 200. A watchdog polls the process and ``/ready``;
when the tunnel is lost it starts a new quick tunnel (a new URL: quick tunnels never keep theirs) and
reports both through the listener, so the session re-points the Vapi resources. cloudflared is downloaded
(download.py) only when ``--tunnel cloudflared`` is asked for and none is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time

from vapi_dev.exchange import Notice, TunnelChanged
from vapi_dev.tunnels import cloudflared_errors as text
from vapi_dev.tunnels import download
from vapi_dev.tunnels.base import Listener, Progress, TunnelConfig, TunnelError, TunnelInfo
from vapi_dev.tunnels.cloudflared_agent import Agent
from vapi_dev.tunnels.locate import upstream_url

PATH_ENV = "VAPI_DEV_CLOUDFLARED_PATH"
HEALTH_INTERVAL_S = 1.0
STRIKES = 2  # consecutive failed /ready answers before a restart (a dead process needs no second look)
MAX_RESTARTS = 5
RESTART_BACKOFF_S = 1.0  # doubled after each failed try, at most 30 s: a burst of new quick tunnels gets a 429
STABLE_S = 60.0  # a tunnel that lived this long before it was lost starts the restart count afresh
SELF_CHECK_TRIES = 3  # a new trycloudflare.com name may take a moment to resolve
PORT_TRIES = 3
OUTSIDE_STOP_GRACE_S = 15.0  # beyond the receiver's 5 s drain and restoring the Vapi resources on a Ctrl-C


def resolve_cloudflared_path(cfg: TunnelConfig) -> tuple[str | None, bool]:
    """(path to cloudflared or None, whether the user chose it): --cloudflared-path, the env var, PATH, and
    last the one downloaded before into the data directory."""
    for chosen in (cfg.cloudflared_path, os.environ.get(PATH_ENV)):
        if chosen:
            return os.path.expanduser(chosen), True
    found = shutil.which("cloudflared")
    if found:
        return found, False
    managed = download.managed_path()
    return (str(managed), False) if _executable(str(managed)) else (None, False)


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def cloudflared_installed(cfg: TunnelConfig) -> bool:
    path, _ = resolve_cloudflared_path(cfg)
    return path is not None and _executable(path)


class CloudflaredTunnel:
    """``cloudflared tunnel --url <receiver>``: a quick tunnel, restarted (with a new URL) when lost."""

    name = "cloudflared"

    def __init__(
        self,
        cfg: TunnelConfig,
        *,
        progress: Progress | None = None,
        allow_download: bool = False,
        health_interval: float = HEALTH_INTERVAL_S,
        max_restarts: int = MAX_RESTARTS,
        restart_backoff: float = RESTART_BACKOFF_S,
        outside_grace: float = OUTSIDE_STOP_GRACE_S,
    ) -> None:
        self._cfg = cfg
        self._progress = progress
        self._download = allow_download
        self._health_interval = health_interval
        self._max_restarts = max_restarts
        self._restart_backoff = restart_backoff
        self._outside_grace = outside_grace
        self._path, self._chosen = resolve_cloudflared_path(cfg)
        self._agent: Agent | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._listener: Listener | None = None
        self._upstream = ""
        self._local_url = ""
        self._public_url: str | None = None
        self._up_since = 0.0  # when the current tunnel came up (monotonic)
        self._flaps = 0  # tunnels lost within STABLE_S of coming up, in a row

    @property
    def pid(self) -> int | None:
        agent = self._agent
        return agent.proc.pid if agent is not None and agent.proc is not None else None

    def set_listener(self, cb: Listener) -> None:
        self._listener = cb

    async def start(self, local_url: str) -> TunnelInfo | None:
        path = await self._binary()
        self._local_url = local_url
        self._upstream = upstream_url(local_url)
        info = await self._start_agent(path)
        self._up_since = time.monotonic()
        self._watch_task = asyncio.create_task(self._watch(path), name="vapi-dev-cloudflared-health")
        return info

    async def stop(self) -> None:
        task, self._watch_task = self._watch_task, None
        if task is not None:
            task.cancel()  # also mid-restart: the agent being started is stopped by _start_agent
            with contextlib.suppress(asyncio.CancelledError):
                await task
        agent, self._agent = self._agent, None
        if agent is not None:
            await agent.stop()
        self._public_url = None

    # -- starting ----------------------------------------------------------------------------------

    async def _binary(self) -> str:
        path = self._path
        skipped: str | None = None
        if path is not None and os.path.isfile(path):
            try:
                await download.check_version(path, chosen=self._chosen)
                return path
            except download.TooOld as exc:
                # An old cloudflared on PATH (a distribution's package) is passed over for a current one
                # downloaded before, or, when --tunnel cloudflared was asked for, downloaded now.
                managed = str(download.managed_path())
                if self._chosen or path == managed or not (_executable(managed) or self._download):
                    raise
                skipped = exc.what
                if _executable(managed):
                    await download.check_version(managed, chosen=False)
                    self._path = managed
                    self._emit(Notice("warning", f"{skipped}; using {managed} instead"))
                    return managed
        elif self._chosen or not self._download:
            raise TunnelError(text.missing_binary(path if self._chosen else None))

        def report(line: str) -> None:
            if self._progress is not None:
                self._progress(line)

        report("Downloading cloudflared…")
        path, version = await download.download(report)
        self._path = path
        if skipped:
            self._emit(Notice("warning", f"{skipped}; vapi-dev downloaded a current one"))
        self._emit(Notice("info", f"downloaded cloudflared {version} to {path} (--tunnel auto finds it there too)"))
        return path

    async def _start_agent(self, path: str) -> TunnelInfo:
        attempt = 1
        while True:
            agent = Agent(path)
            self._agent = agent
            try:
                await agent.launch(self._upstream)
                public_url = await agent.wait_ready(self._cfg.startup_timeout)
            except BaseException as exc:
                await agent.stop()
                if self._agent is agent:
                    self._agent = None
                # The metrics port is picked free, then bound by cloudflared: another program may take it in
                # between. That is no reason to give up; a new port is.
                if isinstance(exc, text.StartFailed) and agent.port_taken() and attempt < PORT_TRIES:
                    attempt += 1
                    continue
                raise
            self._public_url = public_url
            return TunnelInfo(public_url=public_url, provider=self.name, inspect_url=f"{agent.metrics}/metrics")

    # -- health ------------------------------------------------------------------------------------

    def _emit(self, event: TunnelChanged | Notice) -> None:
        if self._listener is not None:
            self._listener(event)

    async def _problem(self) -> tuple[str, bool] | None:
        """(why the tunnel is not usable, whether that is certain at once), or None when it is fine."""
        agent = self._agent
        if agent is None:
            return "cloudflared is not running", True
        if agent.told_to_stop():
            # Ctrl-C in a terminal reaches cloudflared too (it shares vapi-dev's process group, so that a second
            # Ctrl-C, which ends vapi-dev at once, cannot leave it running): give vapi-dev's own stop, which
            # ends this watch, time to come first; a cloudflared someone else stopped is restarted after that.
            await asyncio.sleep(self._outside_grace)
            return "cloudflared was stopped from outside vapi-dev (a signal)", True
        if not agent.alive:
            return await agent.exit_reason(), True
        if not await agent.ready():
            return "cloudflared stopped being ready (its /ready check failed)", False
        return None

    async def _watch(self, path: str) -> None:
        try:
            await self._watch_forever(path)
        except Exception as exc:  # the watchdog must never take the listener down; say so once and stop
            self._emit(Notice("error", f"cloudflared watchdog stopped ({exc!r:.200}): restart vapi-dev if it fails"))

    async def _watch_forever(self, path: str) -> None:
        strikes = 0
        while True:
            await asyncio.sleep(self._health_interval)
            problem = await self._problem()
            if problem is None:
                strikes = 0
                continue
            reason, certain = problem
            strikes += 1
            if not certain and strikes < STRIKES:
                continue
            strikes = 0
            if not await self._recover(path, reason):
                return

    async def _recover(self, path: str, reason: str) -> bool:
        self._emit(TunnelChanged(public_url=self._public_url, up=False, reason=reason))
        # A tunnel that keeps dying soon after each restart would make a new quick tunnel (and re-point Vapi)
        # every few seconds until Cloudflare answers 429: those short lives count against the same bound.
        now = time.monotonic()
        self._flaps = self._flaps + 1 if now - self._up_since < STABLE_S else 0
        if self._flaps > self._max_restarts:
            last = f"each new tunnel was lost again within {STABLE_S:g} s, {self._flaps} times in a row: {reason}"
            self._emit(Notice("error", text.gave_up(self._max_restarts, self._local_url, last)))
            return False
        if self._flaps > 1:
            await asyncio.sleep(min(30.0, self._restart_backoff * 2 ** (self._flaps - 2)))
        last = reason
        for attempt in range(1, self._max_restarts + 1):
            agent, self._agent = self._agent, None
            if agent is not None:
                await agent.stop()
            try:
                info = await self._start_agent(path)
            except TunnelError as exc:
                last = exc.reason if isinstance(exc, text.StartFailed) else exc.message
                if attempt < self._max_restarts:
                    await asyncio.sleep(min(30.0, self._restart_backoff * 2 ** (attempt - 1)))
                continue
            self._up_since = time.monotonic()
            note = await self._self_check(info.public_url)
            self._emit(TunnelChanged(public_url=info.public_url, up=True, reason=f"new public URL; {note}"))
            return True
        self._emit(Notice("error", text.gave_up(self._max_restarts, self._local_url, last)))
        return False

    async def _self_check(self, public_url: str) -> str:
        from vapi_dev.tunnels.selfcheck import self_check

        detail = ""
        for attempt in range(SELF_CHECK_TRIES):
            if attempt:
                await asyncio.sleep(1.0)
            ok, detail = await self_check(public_url)
            if ok:
                return f"self-check ok — {detail}"
        return f"self-check FAILED — {detail}"
