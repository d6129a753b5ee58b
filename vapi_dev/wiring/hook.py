"""Point Vapi assistants, phone numbers and tools at the tunnel while listening, and put them back after."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vapi_dev.exchange import Notice
from vapi_dev.vapi import DEFAULT_API_URL
from vapi_dev.vapi.api import Kind, VapiApi, VapiApiError
from vapi_dev.wiring.notes import Resource, precedence_notes, tools_of
from vapi_dev.wiring.state import (
    Entry,
    State,
    WiringError,
    default_state_path,
    delete_state,
    load_state,
    pid_alive,
    restore_entry,
    restore_state,
    save_state,
)

_MAX_LOOKUPS = 20  # related tools/assistants read for precedence notes; bounds the start-up cost


@dataclass(frozen=True)
class WiringConfig:
    assistants: tuple[str, ...] = ()
    phone_numbers: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    path: str = ""  # appended to the public URL, e.g. "/webhook"
    api_key: str | None = None  # from --api-key or VAPI_API_KEY (the CLI resolves it)
    api_url: str = DEFAULT_API_URL
    state_path: Path | None = None  # None → default_state_path()

    @property
    def enabled(self) -> bool:
        return bool(self.assistants or self.phone_numbers or self.tools)

    def targets(self) -> list[tuple[Kind, str]]:
        """Every (kind, id) once, in the order given."""
        seen: dict[tuple[Kind, str], None] = {}
        groups: tuple[tuple[Kind, tuple[str, ...]], ...] = (
            ("assistant", self.assistants), ("phone-number", self.phone_numbers), ("tool", self.tools),
        )  # fmt: skip
        for kind, ids in groups:
            for rid in ids:
                if rid.strip():
                    seen.setdefault((kind, rid.strip()), None)
        return list(seen)


def join_url(public_url: str, path: str) -> str:
    """Public URL plus ``--path`` ("webhook" and "/webhook" both give ".../webhook")."""
    path = path.strip()
    if not path or path == "/":
        return public_url
    return public_url.rstrip("/") + ("" if path.startswith("/") else "/") + path


class Wiring:
    """The session Hook: points resources at the public URL and puts them back on stop."""

    def __init__(self, cfg: WiringConfig, notice: Callable[[Notice], None]) -> None:
        self.cfg = cfg
        self._notice = notice
        self.state_path = cfg.state_path or default_state_path()
        self._api: VapiApi | None = None
        self._resources: list[Resource] = []
        self._state: State | None = None
        self._url: str | None = None
        self._prepared = False
        self._stopped = False
        self._lock = asyncio.Lock()

    def _say(self, level: Any, text: str) -> None:
        with contextlib.suppress(Exception):  # a broken sink must not stop a restore
            self._notice(Notice(level, text))

    async def prepare(self) -> None:
        """Check the key, undo what a dead earlier run left, and read every resource. Changes nothing
        of ours; raises VapiApiError (fail fast, before the tunnel is announced)."""
        if self._prepared or not self.cfg.enabled:
            return
        api = VapiApi(self.cfg.api_key, self.cfg.api_url)
        try:
            await self._undo_leftovers(api)
            self._resources = await self._read_all(api, self.cfg.targets())
            related = await self._read_related(api)
        except BaseException:
            await api.aclose()
            raise
        self._api = api
        self._prepared = True
        for note in precedence_notes(self._resources, related):
            self._say("warning", note)

    async def _undo_leftovers(self, api: VapiApi) -> None:
        state = load_state(self.state_path)
        if state is None or not state.entries:
            return
        if pid_alive(state.pid):
            raise WiringError(
                f"another vapi-dev (pid {state.pid}) has pointed resources at its tunnel; stop it first, "
                f"or give this run its own VAPI_DEV_HOME"
            )
        if state.api_url.rstrip("/") != api.api_url:
            raise WiringError(
                f"an earlier run against {state.api_url} did not restore what it changed; run "
                f"`vapi-dev restore --vapi-api-url {state.api_url}` first"
            )
        self._say("warning", "an earlier run did not restore what it changed; restoring it now")
        outcomes = await restore_state(api, state, self.state_path)
        for out in outcomes:
            self._say(out.level, out.text)
        if any(not o.done for o in outcomes):
            raise WiringError("could not undo what an earlier run changed; fix the error above and run "
                              "`vapi-dev restore`")  # fmt: skip

    @staticmethod
    async def _read_all(api: VapiApi, targets: Sequence[tuple[Kind, str]]) -> list[Resource]:
        results = await asyncio.gather(*(api.get(k, i) for k, i in targets), return_exceptions=True)
        for res in results:  # the first failure, in the order given, so messages are stable
            if isinstance(res, BaseException):
                raise res
        return [Resource(k, i, r) for (k, i), r in zip(targets, results, strict=True) if isinstance(r, dict)]

    async def _read_related(self, api: VapiApi) -> dict[tuple[str, str], Mapping[str, Any]]:
        wired = {(r.kind, r.id) for r in self._resources}
        want: list[tuple[Kind, str]] = []
        for r in self._resources:
            if r.kind == "assistant":
                want += [("tool", t) for t in tools_of(r.data)[1]]
            elif r.kind == "phone-number" and isinstance(r.data.get("assistantId"), str):
                want.append(("assistant", r.data["assistantId"]))
        want = [w for w in dict.fromkeys(want) if w not in wired][:_MAX_LOOKUPS]
        results = await asyncio.gather(*(api.get(k, i) for k, i in want), return_exceptions=True)
        # Only for notes: a tool we cannot read is simply not mentioned.
        return {w: r for w, r in zip(want, results, strict=True) if isinstance(r, dict)}

    async def on_public_url(self, public_url: str) -> None:
        """First call: save the plan, then PATCH every resource (all or nothing). Later calls re-point."""
        if not self.cfg.enabled:
            return
        async with self._lock:
            if self._stopped:
                return
            await self.prepare()
            target = join_url(public_url, self.cfg.path)
            if self._state is None:
                await self._first(target)
            elif target != self._url:
                await self._repoint(target)

    def _entry(self, res: Resource, target: str) -> Entry:
        server = res.data.get("server")
        legacy = {k: res.data[k] for k in ("serverUrl", "serverUrlSecret") if k in res.data}
        provider = res.data.get("provider")
        return Entry(
            kind=res.kind, id=res.id, name=res.name,
            before_server=copy.deepcopy(server) if isinstance(server, dict) else None,
            provider=provider if isinstance(provider, str) else None, legacy=legacy, urls=[target],
        )  # fmt: skip

    @staticmethod
    def _new_server(entry: Entry, target: str) -> dict[str, Any]:
        server = copy.deepcopy(entry.before_server) if entry.before_server else {}
        server["url"] = target  # everything else (credentialId, headers, timeoutSeconds, …) is kept
        return server

    async def _first(self, target: str) -> None:
        assert self._api is not None
        api = self._api
        # Read again right before changing: "before" must be what is there now, not at prepare().
        fresh = await self._read_all(api, [(r.kind, r.id) for r in self._resources])
        entries = [self._entry(r, target) for r in fresh]
        state = State(api.api_url, os.getpid(), time.time(), entries)
        save_state(self.state_path, state)  # before any PATCH: a kill -9 from here on is recoverable
        self._state, self._url = state, target
        for i, entry in enumerate(entries):
            try:
                await api.patch(entry.kind, entry.id, entry.body(self._new_server(entry, target)))
            except VapiApiError as exc:
                raise await self._rollback(entries[: i + 1], entry, exc) from exc
        for entry in entries:
            self._say("info", f"{entry.label}: server.url → {target} (was {entry.before_url or 'unset'})")

    async def _rollback(self, entries: list[Entry], failed: Entry, exc: VapiApiError) -> WiringError:
        """Undo a partly applied start; returns the error to raise."""
        assert self._api is not None and self._state is not None
        left: list[Entry] = []
        for entry in entries:  # includes the failed one: a dropped connection may still have applied
            try:
                out = await restore_entry(self._api, entry)
                ok = out.done
            except VapiApiError:
                ok = False
            if not ok:
                left.append(entry)
        if left:
            self._state.entries = left
            save_state(self.state_path, self._state)
            names = ", ".join(e.label for e in left)
            return WiringError(
                f"could not point {failed.label} at the tunnel ({exc.message}), and could not put back "
                f"{names}; run `vapi-dev restore` when the API is reachable"
            )
        delete_state(self.state_path)
        self._state = None
        return WiringError(f"could not point {failed.label} at the tunnel: {exc.message}; nothing was changed")

    async def _repoint(self, target: str) -> None:
        assert self._api is not None and self._state is not None
        old = self._url
        for entry in self._state.entries:
            entry.urls.append(target)
        save_state(self.state_path, self._state)
        self._url = target
        for entry in self._state.entries:
            try:
                await self._api.patch(entry.kind, entry.id, entry.body(self._new_server(entry, target)))
            except VapiApiError as exc:
                self._say("error", f"{entry.label}: could not re-point server.url to {target}: {exc.message}")
            else:
                self._say("info", f"{entry.label}: server.url → {target} (tunnel URL changed, was {old})")

    async def on_stop(self) -> None:
        """Put every resource back; never raises. Failures keep the state file for `vapi-dev restore`."""
        async with self._lock:
            self._stopped = True
            try:
                await self._restore_all()
            except BaseException as exc:  # must not raise; but let cancellation through after reporting
                self._say("error", f"could not restore the Vapi resources ({exc}); run `vapi-dev restore`")
                if isinstance(exc, asyncio.CancelledError):
                    raise
            finally:
                if self._api is not None:
                    with contextlib.suppress(Exception):
                        await self._api.aclose()

    async def _restore_all(self) -> None:
        if self._state is None or self._api is None:
            return
        try:
            outcomes = await restore_state(self._api, self._state, self.state_path)
        except VapiApiError as exc:
            self._say("error", f"could not restore the Vapi resources: {exc.message}; the record is kept in "
                               f"{self.state_path}, run `vapi-dev restore`")  # fmt: skip
            return
        for out in outcomes:
            self._say(out.level, out.text)
        if any(not o.done for o in outcomes):
            self._say("error", f"some resources were not restored; the record is kept in {self.state_path}, "
                               "run `vapi-dev restore`")  # fmt: skip
        self._state = None


def build(cfg: WiringConfig, notice: Callable[[Notice], None]) -> Wiring:
    """The session Hook for ``cfg`` (does nothing when no resource is given)."""
    return Wiring(cfg, notice)
