"""Which listeners are running: each `listen` writes its local URL to a small file in the data directory's
``listeners/`` folder while it runs, so `trigger` can find it without being told (``--to``)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from vapi_dev.config import data_file
from vapi_dev.exchange import Event, Ready
from vapi_dev.wiring.state import pid_alive


def _folder() -> Path:
    return data_file("listeners", "state")


@dataclass(frozen=True)
class Running:
    url: str
    pid: int
    started_at: float
    forward_to: str | None = None  # where the listener forwards (older files may not say)


def running_listeners() -> list[Running]:
    """The listeners running now, newest first; files of listeners that died are removed."""
    found: list[Running] = []
    folder = _folder()
    try:
        paths = list(folder.glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            data = json.loads(path.read_text())
            forward = data.get("forward_to")
            item = Running(
                str(data["url"]), int(data["pid"]), float(data["started_at"]), str(forward) if forward else None
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(item.pid):  # (never this process: trigger is not a listener)
            found.append(item)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found, key=lambda r: r.started_at, reverse=True)


class ListenerFile:
    """A Sink: writes this listener's URL when it is ready, removes it when the listener stops."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def emit(self, event: Event) -> None:
        if isinstance(event, Ready) and self.path is None:
            folder = _folder()
            path = folder / f"{os.getpid()}.json"
            try:
                folder.mkdir(parents=True, exist_ok=True, mode=0o700)
                record = {
                    "url": event.local_url,
                    "pid": os.getpid(),
                    "started_at": time.time(),
                    "forward_to": event.forward_to,
                }
                path.write_text(json.dumps(record))
            except OSError:
                return  # trigger then needs --to; forwarding is not affected
            self.path = path

    async def aclose(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            self.path = None
