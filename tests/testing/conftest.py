"""The developer app every `vapi-dev test` test runs against (tests/testing/apps.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.testing.apps import Running, app_running


@pytest.fixture
def app() -> Iterator[Running]:
    with app_running() as running:
        yield running
