"""Flow control of one proxy connection, either side: reading paused and resumed, writes drained."""

from __future__ import annotations

import asyncio


class FlowControl:
    """Owns a transport's pause state. The protocol hands its ``pause_writing``/``resume_writing``
    callbacks here; whoever writes awaits ``drain()`` while ``write_paused`` (checked first, so a write
    costs nothing more when the peer keeps up)."""

    __slots__ = ("_is_writable_event", "_transport", "read_paused", "write_paused")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.read_paused = False
        self.write_paused = False
        self._is_writable_event = asyncio.Event()
        self._is_writable_event.set()  # set while writing is not paused

    def pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self.read_paused:
            self.read_paused = False
            self._transport.resume_reading()

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark."""
        self.write_paused = True
        self._is_writable_event.clear()

    def resume_writing(self) -> None:
        """The transport's buffer is back under its low-water mark."""
        self.write_paused = False
        self._is_writable_event.set()

    def wake_writer(self) -> None:
        """Let whoever waits in ``drain()`` now go on though writing stays paused (the connection is gone,
        or the writer has a reason to stop); a later ``drain()`` waits again."""
        if self.write_paused:
            self._is_writable_event.set()  # wakes the waiters there are now...
            self._is_writable_event.clear()  # ...and only them

    async def drain(self) -> None:
        """Until writing resumes or ``wake_writer()`` is called (``write_paused`` still set then tells which)."""
        await self._is_writable_event.wait()
