"""Snapshots of the inspector's screens at 80×24 and 120×40 (pytest-textual-snapshot; `--snapshot-update`
writes them again, under tests/ui/__snapshots__/, after a change meant to show)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import sample_exchanges
from vapi_dev.redact import Masker
from vapi_dev.ui.app import InspectorApp
from vapi_dev.ui.feed import Batch

SIZES = [(80, 24), (120, 40)]


def inspector() -> InspectorApp:
    return InspectorApp(Masker())


async def filled(pilot: Any) -> None:
    pilot.app.deliver(Batch(exchanges=sample_exchanges(), status="127.0.0.1:4242 → 127.0.0.1:3000 · public local only"))
    await pilot.pause()
    pilot.app.details.show(pilot.app.event_list.selected)  # at once, not after the follow-mode delay
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_main_screen(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(inspector(), terminal_size=size, run_before=filled)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_details_of_a_problem_on_its_request_tab(snap_compare: Any, size: tuple[int, int]) -> None:
    # up ×3: the assistant-request whose reply names no assistant (its problems first), then the request
    assert snap_compare(inspector(), terminal_size=size, run_before=filled, press=["up", "up", "up", "3"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_help(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(inspector(), terminal_size=size, run_before=filled, press=["question_mark"])


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_filtered_to_problems(snap_compare: Any, size: tuple[int, int]) -> None:
    assert snap_compare(inspector(), terminal_size=size, run_before=filled, press=["p"])
