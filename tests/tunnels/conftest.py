"""Fixtures the tunnel tests share."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ngrok import make_receiver


@pytest.fixture
async def receiver(aiohttp_server: Any) -> str:
    """A stand-in receiver (answers the self-check ping) on a free port: its local URL."""
    server = await aiohttp_server(make_receiver())
    return f"http://127.0.0.1:{server.port}"
