"""The pytest plugin (entry point ``pytest11``): ``--vapi-fixtures DIR --vapi-against URL``.

Loaded by every pytest run in an environment where vapi-dev is installed, so it imports nothing heavy until
its options are given, and does nothing without them. The items themselves are in testing/pytest_items.py.
Credentials come from VAPI_DEV_SECRET, VAPI_DEV_BEARER and VAPI_DEV_HMAC_SECRET (never the command line).
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vapi-dev", "vapi-dev: recorded Vapi exchanges as tests")
    group.addoption("--vapi-fixtures", action="append", default=[], metavar="PATH", help="Fixture file or directory.")
    group.addoption("--vapi-against", default=None, metavar="URL", help="The app's server URL to test.")
    group.addoption("--vapi-snapshot", action="store_true", help="Also compare each reply with the recorded one.")
    group.addoption(
        "--vapi-ignore", action="append", default=[], metavar="PATH", help="A JSON path the snapshot ignores."
    )
    group.addoption("--vapi-timeout", type=float, default=30.0, metavar="SECONDS", help="Wait for each reply.")
    group.addoption(
        "--vapi-deadline", type=float, default=None, metavar="SECONDS", help="Every reply-needed type's deadline."
    )


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselect, so they apply to these items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("vapi_fixtures"):
        return
    if not config.getoption("vapi_against"):
        raise pytest.UsageError("--vapi-fixtures needs --vapi-against URL (the app to test).")
    from vapi_dev.errors import VapiDevError
    from vapi_dev.testing.pytest_items import collect

    try:
        items.extend(collect(session, config))
    except VapiDevError as exc:  # a bad --vapi-against or credential: said once, not as a traceback per item
        raise pytest.UsageError(exc.message) from None
