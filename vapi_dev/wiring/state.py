"""The on-disk record of what wiring changed, and putting resources back from it (also after a crash)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from vapi_dev.config import data_file
from vapi_dev.vapi.api import (
    KIND_LABEL,
    InvalidApiKey,
    Kind,
    MissingApiKey,
    ResourceNotFound,
    VapiApi,
    VapiApiError,
    VapiUnreachable,
)

STATE_VERSION = 1


class WiringError(VapiApiError):
    """Wiring could not do (or undo) its work; the message says what is left and what to do."""


class RestoreIncomplete(WiringError):
    """Some resources could not be restored; ``lines`` reports every resource, done or not."""

    def __init__(self, message: str, lines: list[str]) -> None:
        super().__init__(message)
        self.lines = lines


def default_state_path() -> Path:
    """``$VAPI_DEV_HOME/wiring-state.json``, else the platform's user state directory."""
    return data_file("wiring-state.json", "state")


def label(kind: str, rid: str, name: str | None) -> str:
    """``assistant asst_1 (Weather bot)``."""
    return f"{KIND_LABEL.get(kind, kind)} {rid}" + (f" ({name})" if name else "")


@dataclass
class Entry:
    """One resource wiring changes: its server setting before, and every URL we pointed it at."""

    kind: Kind
    id: str
    name: str | None
    before_server: dict[str, Any] | None  # None: the resource had no server object
    provider: str | None = None  # phone numbers: PATCH must repeat it
    legacy: dict[str, Any] = field(default_factory=dict)  # serverUrl / serverUrlSecret, for the record
    urls: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return label(self.kind, self.id, self.name)

    @property
    def before_url(self) -> str | None:
        url = (self.before_server or {}).get("url")
        return url if isinstance(url, str) else None

    def body(self, server: dict[str, Any] | None) -> dict[str, Any]:
        """A PATCH body setting ``server`` (None removes it), plus what the API requires."""
        out: dict[str, Any] = {"server": server}
        if self.kind == "phone-number" and self.provider:
            out["provider"] = self.provider
        return out


@dataclass
class State:
    api_url: str
    pid: int
    created_at: float
    entries: list[Entry]

    def to_json(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> State:
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError("unknown format")
        entries = [Entry(**e) for e in data["entries"]]
        return cls(str(data["api_url"]), int(data["pid"]), float(data["created_at"]), entries)


def save_state(path: Path, state: State) -> None:
    """Write atomically (temp file + rename) with mode 0600, so a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".wiring-", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(state.to_json(), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_state(path: Path) -> State | None:
    """The saved state, or None when there is none; raises WiringError when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WiringError(f"cannot read the wiring state file {path} ({exc.strerror}); check its permissions") from None
    try:
        return State.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError):
        raise WiringError(
            f"the wiring state file {path} is damaged; check the resources it names in the Vapi dashboard, "
            "then delete it"
        ) from None


def delete_state(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # our own record (tests, or a run restoring itself): not "another" run
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    proc = Path(f"/proc/{pid}")
    try:
        # Linux: a killed run can linger as a zombie until reaped, and its pid can be reused.
        if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        return b"vapi" in proc.joinpath("cmdline").read_bytes()
    except (OSError, IndexError):
        return True  # no /proc (macOS): trust kill(0)


@dataclass(frozen=True)
class PendingState:
    """What an earlier run left pointed at its tunnel."""

    path: Path
    pid: int
    running: bool  # that run's process still exists (it will restore on exit)
    items: tuple[str, ...]  # "assistant asst_1 (Weather bot) → https://…"

    @property
    def text(self) -> str:
        what = "; ".join(self.items)
        if self.running:
            return f"vapi-dev (pid {self.pid}) has pointed these at its tunnel: {what}"
        return f"an earlier run left these pointed at its tunnel: {what}; run `vapi-dev restore` to undo"


def pending_state(state_path: Path | None = None) -> PendingState | None:
    """A summary of an unrestored earlier run, or None. Never raises (a damaged file is reported)."""
    path = state_path or default_state_path()
    try:
        state = load_state(path)
    except WiringError as exc:
        return PendingState(path, 0, False, (exc.message,))
    if state is None or not state.entries:
        return None
    items = tuple(f"{e.label} → {e.urls[-1] if e.urls else '?'}" for e in state.entries)
    return PendingState(path, state.pid, pid_alive(state.pid), items)


@dataclass(frozen=True)
class Outcome:
    done: bool  # nothing left to do for this resource
    level: Literal["info", "warning", "error"]
    text: str


def _url_text(url: str | None) -> str:
    return url if url else "(unset)"


async def restore_entry(api: VapiApi, entry: Entry) -> Outcome:
    """Put one resource's server back, unless it is already back or someone else changed it since.

    Key and network failures are raised (every other resource would fail the same way).
    """
    try:
        current = await api.get(entry.kind, entry.id)
        cur = current.get("server")
        cur_server = cur if isinstance(cur, dict) else None
        if cur_server == entry.before_server:
            return Outcome(True, "info", f"{entry.label}: already as it was")
        cur_url = (cur_server or {}).get("url")
        if cur_url not in entry.urls:
            return Outcome(
                True, "warning",
                f"{entry.label}: server.url was changed elsewhere since (now {_url_text(cur_url)}); left as is",
            )  # fmt: skip
        await api.patch(entry.kind, entry.id, entry.body(entry.before_server))
    except (MissingApiKey, InvalidApiKey, VapiUnreachable):
        raise
    except ResourceNotFound:
        return Outcome(True, "warning", f"{entry.label}: no longer exists; nothing to restore")
    except VapiApiError as exc:
        return Outcome(
            False, "error", f"{entry.label}: could not restore server.url to {_url_text(entry.before_url)}: "
            f"{exc.message}",
        )  # fmt: skip
    if entry.before_server is None:
        return Outcome(True, "info", f"{entry.label}: server setting removed again (it had none)")
    return Outcome(True, "info", f"{entry.label}: server.url restored to {_url_text(entry.before_url)}")


async def restore_state(api: VapiApi, state: State, path: Path) -> list[Outcome]:
    """Restore every entry; the file then holds only what is still left (deleted when nothing is)."""
    outcomes: list[Outcome] = []
    left: list[Entry] = []
    try:
        for i, entry in enumerate(state.entries):
            try:
                out = await restore_entry(api, entry)
            except VapiApiError:
                left.extend(state.entries[i:])
                raise
            outcomes.append(out)
            if not out.done:
                left.append(entry)
    finally:
        if left:
            state.entries = left
            save_state(path, state)
        else:
            delete_state(path)
    return outcomes


async def restore_from_state(
    state_path: Path | None, api_key: str | None, api_url: str | None = None, *, force: bool = False
) -> list[str]:
    """Undo what a crashed or killed run left; one line per resource. [] when there was nothing.

    Raises VapiApiError (missing/invalid key, network) and WiringError (another run still active,
    or some resources could not be restored — the file then keeps only those).
    """
    path = state_path or default_state_path()
    state = load_state(path)
    if state is None or not state.entries:
        delete_state(path)
        return []
    if not force and pid_alive(state.pid):
        raise WiringError(
            f"vapi-dev (pid {state.pid}) is still running and will restore these itself when it stops; "
            "stop it first, or pass --force"
        )
    async with VapiApi(api_key, api_url or state.api_url) as api:
        outcomes = await restore_state(api, state, path)
    lines = [o.text for o in outcomes]
    failed = [o.text for o in outcomes if not o.done]
    if failed:
        raise RestoreIncomplete(
            f"{len(failed)} resource(s) could not be restored; the record is kept in {path}, "
            "run `vapi-dev restore` again",
            lines,
        )
    return lines
