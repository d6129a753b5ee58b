"""`vapi-dev test --start CMD`: the app started, waited for, its output shown when it fails, and stopped."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from tests.support.net import free_port
from tests.testing.apps import CALL, Running, vapi_test, write_fixture
from vapi_dev.testing.start import accepts


def app_cmd(port: int, prefix: str = "") -> str:
    return f"{prefix}exec {shlex.quote(sys.executable)} -m tests.testing.apps {port}"


def gone(pid: int) -> bool:
    """The process no longer runs (a zombie waiting for a reaper counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in state


def test_start_runs_the_app_for_the_tests_and_stops_it(tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    port = free_port()
    r = vapi_test(str(tmp_path), "--against", f"http://127.0.0.1:{port}/right", "--start", app_cmd(port))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed, 0 failed" in r.stdout
    assert not accepts("127.0.0.1", port)  # stopped with the run


def test_the_apps_output_is_shown_when_tests_fail(tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL)
    port = free_port()
    r = vapi_test(str(tmp_path), "--against", f"http://127.0.0.1:{port}/wrong", "--start", app_cmd(port))
    assert r.returncode == 1, r.stdout
    assert "tests failed: the app's output" in r.stderr and f"app listening on {port}" in r.stderr
    assert not accepts("127.0.0.1", port)


def test_an_app_that_exits_first_is_reported_with_its_output(tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    port = free_port()
    r = vapi_test(str(tmp_path), "--against", str(port), "--start", "echo 'boom: no DATABASE_URL' >&2; exit 3")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "boom: no DATABASE_URL" in r.stderr
    assert f"exited with status 3 before 127.0.0.1:{port} accepted connections" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_app_that_never_listens_times_out_and_is_killed(tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    pidfile = tmp_path / "pid"
    cmd = f"echo $$ > {shlex.quote(str(pidfile))}; echo 'warming up'; exec sleep 60"
    r = vapi_test(str(tmp_path), "--against", str(free_port()), "--start", cmd, "--start-timeout", "0.5")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "did not accept connections on 127.0.0.1:" in r.stderr and "within 0.5 s" in r.stderr
    assert "warming up" in r.stderr
    assert gone(int(pidfile.read_text()))


def test_an_app_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    port, pidfile = free_port(), tmp_path / "pid"
    cmd = app_cmd(port, prefix=f"trap '' TERM; echo $$ > {shlex.quote(str(pidfile))}; ")
    r = vapi_test(str(tmp_path), "--against", f"http://127.0.0.1:{port}/right", "--start", cmd)
    assert r.returncode == 0, r.stdout + r.stderr
    assert gone(int(pidfile.read_text())) and not accepts("127.0.0.1", port)


def test_start_refuses_a_port_something_already_listens_on(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "call.json", CALL[:1])
    r = vapi_test(str(tmp_path), "--against", app.url, "--start", "sleep 5")
    assert r.returncode == 1 and "something is already listening on 127.0.0.1:" in r.stderr
