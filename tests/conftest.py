"""Fixtures shared by every test; the helpers behind them live in tests/support/."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.support.apps import AppState, make_app, serve
from tests.support.cli import CliProcess


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every CLI run (in-process or subprocess) journals and keeps state in a temporary home."""
    monkeypatch.setenv("VAPI_DEV_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("NGROK_AUTHTOKEN", raising=False)
    monkeypatch.delenv("VAPI_API_KEY", raising=False)


@pytest.fixture
async def fake_app() -> AsyncIterator[tuple[str, AppState]]:
    """The fake developer app (tests.support.apps.make_app): its base URL and what it has seen."""
    state = AppState()
    runner, url = await serve(make_app(state), shutdown_timeout=0.5)
    try:
        yield url, state
    finally:
        state.release.set()
        await runner.cleanup()


@pytest.fixture
def cli() -> Iterator[Any]:
    """``cli(*args, env=...)`` starts the real CLI in a subprocess; every one is killed at the end."""
    procs: list[CliProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CliProcess:
        p = CliProcess(list(args), env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.kill()
