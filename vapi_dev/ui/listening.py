"""``listen --ui``: the inspector in the listener's own event loop, fed by the Bus, stopping it on ``q``.

The Session serves as a task beside the app. Quitting the app sets the listener's stop event (as Ctrl-C does
without --ui: in-flight requests finish, wired resources are restored); the listener stopping by itself (a
SIGTERM, a failure) closes the app. Notices that come once the app has gone are printed on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from rich.text import Text

from vapi_dev.exchange import Notice
from vapi_dev.output.lines import NOTICE_STYLE, printable
from vapi_dev.redact import Masker
from vapi_dev.ui.feed import UiSink
from vapi_dev.vapi.auth import AuthConfig

if TYPE_CHECKING:
    from rich.console import Console

    from vapi_dev.ui.app import InspectorApp

STOPPING = "stopping… letting in-flight requests finish"
BIND_WAIT_STEPS = 500  # × 10 ms: how long the app waits for the receiver to listen (binding takes a moment)


class ListenInspector:
    """What ``listen --ui`` adds to a listener: ``sink`` for the Bus, ``progress`` for the tunnel's start-up
    messages, and ``run`` around the Session."""

    def __init__(self, mask: Masker, auth: AuthConfig | None, err: Console) -> None:
        self.mask = mask
        self.auth = auth
        self.err = err
        self.sink = UiSink(on_orphan=self._print)
        self.app: InspectorApp | None = None

    def _print(self, notice: Notice) -> None:
        line = Text(printable(notice.text, None), style=NOTICE_STYLE.get(notice.level, ""))
        self.err.print(line, soft_wrap=True)

    def progress(self, text: str) -> None:
        """A start-up step ("Starting the ngrok tunnel…"): the app's status line, not a spinner."""
        with contextlib.suppress(Exception):
            self.sink.emit(Notice("info", text))

    async def run(
        self, serve: Coroutine[Any, Any, None], stop: asyncio.Event, listening: Callable[[], bool] = lambda: True
    ) -> None:
        """Serve beside the app. The app starts once the receiver is ``listening``: a listener that cannot start
        (its port taken) ends with its one error line and no screen flashing by."""
        from vapi_dev.ui.app import InspectorApp

        task = asyncio.ensure_future(serve)
        for _ in range(BIND_WAIT_STEPS):
            if task.done() or listening():
                break
            await asyncio.sleep(0.01)
        if task.done():
            await task  # its error goes to the command's error boundary
            return
        app = self.app = InspectorApp(self.mask, auth=self.auth, sink=self.sink)

        def served(_: object) -> None:
            app.serving_done = True
            if app.is_running:
                app.exit()

        task.add_done_callback(served)
        shown = [0]  # how many notices the app had shown when the stop began (a signal's "stopping…" is next)

        async def mark() -> None:
            await stop.wait()
            shown[0] = len(app.notices)

        marker = asyncio.ensure_future(mark())
        try:
            await app.run_async()
        finally:
            marker.cancel()
            if stop.is_set():  # stopped by a signal: what the app said of the stop stays on the terminal
                for notice in list(app.notices)[shown[0] :]:
                    self._print(notice)
            self.sink.detach()  # from here on, notices are printed on stderr
            if not task.done():
                self._print(Notice("info", STOPPING))
                stop.set()
            await task  # a ListenError, TunnelError or VapiApiError goes on to the command's error boundary
