"""The pytest plugin (entry point ``pytest11``): ``--vapi-fixtures DIR --vapi-against URL``.

Loaded by every pytest run in an environment where vapi-dev is installed, so it imports nothing heavy until
its options are given.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vapi-dev", "vapi-dev: recorded Vapi exchanges as tests")
    group.addoption("--vapi-fixtures", action="append", default=[], metavar="PATH", help="Fixture file or directory.")
    group.addoption("--vapi-against", default=None, metavar="URL", help="The app's server URL to test.")
