"""The pytest plugin, in a pytest subprocess on a temporary project, against a real local app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.testing.apps import CALL, Running, write_fixture


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A user's project: a test of its own, and a directory of fixtures (one bad)."""
    (tmp_path / "test_own.py").write_text("def test_own():\n    assert 1 + 1 == 2\n")
    fixtures = tmp_path / "vapi"
    fixtures.mkdir()
    write_fixture(fixtures / "call.json", CALL)
    return tmp_path


def pytest_in(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "VAPI_DEV_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, "NO_COLOR": "1", **(env or {})},
    )


def test_each_exchange_is_an_item_beside_the_users_own_tests(app: Running, project: Path) -> None:
    r = pytest_in(project, "--vapi-fixtures", "vapi", "--vapi-against", f"{app.url}/right")
    assert r.returncode == 0, r.stdout + r.stderr
    for item in ("test_own.py::test_own", "vapi/call.json::0-status-update", "vapi/call.json::1-tool-calls"):
        assert f"{item} PASSED" in r.stdout
    assert "collected 4 items" in r.stdout and "4 passed" in r.stdout


def test_a_failing_exchange_is_explained_as_the_cli_explains_it(app: Running, project: Path) -> None:
    (project / "vapi" / "broken.json").write_text("{")
    r = pytest_in(project, "--vapi-fixtures", "vapi", "--vapi-against", f"{app.url}/wrong")
    assert r.returncode == 1, r.stdout
    assert "vapi/call.json::1-tool-calls FAILED" in r.stdout and "vapi/broken.json::load FAILED" in r.stdout
    assert "POST / → 200" in r.stdout and "✗ contract: 'results' is str, not an array" in r.stdout
    assert "[tool-calls.results-not-array]" in r.stdout and '"results": "Sunny"' in r.stdout
    assert "broken.json is not JSON" in r.stdout
    assert "Traceback" not in r.stdout and "def runtest" not in r.stdout  # the explanation, not our code
    assert "3 failed, 2 passed" in r.stdout


def test_k_selects_exchanges_and_credentials_come_from_the_environment(app: Running, project: Path) -> None:
    headers = [("Content-Type", "application/json"), ("x-signature", "old"), ("x-timestamp", "1")]
    write_fixture(project / "vapi" / "call.json", CALL, headers=headers)
    args = ("--vapi-fixtures", "vapi", "--vapi-against", f"{app.url}/hmac")
    unsigned = pytest_in(project, *args)
    assert unsigned.returncode == 1 and "were masked on export" in unsigned.stdout
    r = pytest_in(project, *args, "-k", "tool", env={"VAPI_DEV_HMAC_SECRET": app.state.secret})
    assert r.returncode == 0, r.stdout
    assert "vapi/call.json::1-tool-calls PASSED" in r.stdout and "1 passed, 3 deselected" in r.stdout
    assert app.state.secret not in r.stdout + r.stderr


def test_the_plugin_does_nothing_without_its_options(project: Path) -> None:
    r = pytest_in(project)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout and "call.json" not in r.stdout
    usage = pytest_in(project, "--vapi-fixtures", "vapi")
    assert usage.returncode == 4 and "--vapi-fixtures needs --vapi-against URL" in usage.stderr
