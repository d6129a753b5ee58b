"""The real console script in a pseudo-terminal: `listen --ui` forwarding a trigger while its screen shows it,
keys pressed, `q` stopping the listener; `vapi-dev ui` following a listener that runs in another process; and
the one sentence each says without a terminal."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from tests.support.background import app_in_thread
from tests.support.cli import ROOT, run_cli
from tests.support.net import free_port

SCRIPT = str(ROOT / ".venv" / "bin" / "vapi-dev")
_ESCAPES = re.compile(r"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


class Screen:
    """A console script in a pty; ``wait_for`` reads its output (escape sequences taken out) until a text shows."""

    def __init__(self, args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("CI", "NO_COLOR")}
        env.update(VAPI_DEV_HOME=str(home), TERM="xterm-256color", COLUMNS="120", LINES="36", **(extra_env or {}))
        self.child = pexpect.spawn(SCRIPT, args, env=env, dimensions=(36, 120), encoding="utf-8", timeout=15)
        self.seen = ""

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in _ESCAPES.sub("", self.seen):
                return self.seen
            try:
                self.seen += self.child.read_nonblocking(65536, timeout=0.2)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                break
        raise AssertionError(f"{text!r} not on the screen; it showed: {_ESCAPES.sub('', self.seen)[-2000:]!r}")

    def press(self, keys: str) -> None:
        self.child.send(keys)

    def exit_code(self, timeout: float = 20.0) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.seen += self.child.before or ""
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def screens() -> Iterator[list[Screen]]:
    made: list[Screen] = []
    yield made
    for s in made:
        s.kill()


def test_listen_ui_shows_a_trigger_and_q_stops_the_listener(home: Path, screens: list[Screen]) -> None:
    port = free_port()
    with app_in_thread() as (url, state, _):
        screen = Screen(["listen", url, "--ui", "--tunnel", "none", "--port", str(port)], home)
        screens.append(screen)
        screen.wait_for("0 exchanges")
        screen.wait_for(f"127.0.0.1:{port}")  # the status line: where it listens
        out = run_cli("trigger", "tool-calls", "--to", f"http://127.0.0.1:{port}", env={"VAPI_DEV_HOME": str(home)})
        assert out.returncode == 0, out.stderr
        screen.wait_for("1 exchanges")
        screen.wait_for("get_weather")  # the row's summary
        screen.press("3")  # the request tab of the selected (newest) exchange
        screen.wait_for('type: "tool-calls"')  # its body, as a tree
        screen.press("?")
        screen.wait_for("inspector — keys")
        screen.press("?")  # closes it (an Escape followed at once by q would read as Alt-q)
        screen.press("q")
        assert screen.exit_code() == 0
        assert len(state.seen) == 1 and b"tool-calls" in state.seen[0].body
        assert "stopping" in _ESCAPES.sub("", screen.seen)  # said on the terminal once the app has gone
    assert not list(home.glob("**/listeners/*.json"))  # the listener's registry file went with it


def test_q_restores_the_vapi_resources_listen_ui_pointed_at_the_tunnel(home: Path, screens: list[Screen]) -> None:
    from tests.fakes.fake_vapi_api import FakeVapiApi
    from tests.support.background import LoopThread

    loop = LoopThread()
    api = FakeVapiApi(key="k-test")
    api_url = loop.run(api.start())
    api.add("assistant", {"id": "asst_1", "name": "Weather bot", "server": {"url": "https://prod.example/vapi"}})
    port = free_port()
    public = f"http://127.0.0.1:{port}"  # a "tunnel you run yourself" that reaches the receiver
    try:
        with app_in_thread() as (url, _state, _):
            args = ["listen", url, "--ui", "--port", str(port), "--public-url", public, "--assistant", "asst_1"]
            screen = Screen([*args, "--vapi-api-url", api_url], home, {"VAPI_API_KEY": "k-test"})
            screens.append(screen)
            screen.wait_for(f"public {public}")
            for _ in range(200):  # the PATCH follows the ready event
                if api.get("assistant", "asst_1")["server"]["url"] == public:
                    break
                time.sleep(0.02)
            assert api.get("assistant", "asst_1")["server"]["url"] == public
            screen.press("q")
            assert screen.exit_code() == 0
        assert api.get("assistant", "asst_1")["server"]["url"] == "https://prod.example/vapi"  # put back
        assert "k-test" not in screen.seen
    finally:
        loop.run(api.stop())
        loop.stop()


def test_listen_ui_stops_on_sigterm_like_the_stream(home: Path, screens: list[Screen]) -> None:
    port = free_port()
    with app_in_thread() as (url, _state, _):
        screen = Screen(["listen", url, "--ui", "--tunnel", "none", "--port", str(port)], home)
        screens.append(screen)
        screen.wait_for(f"127.0.0.1:{port}")
        screen.child.kill(signal.SIGTERM)
        assert screen.exit_code() == 0
        assert "stopping" in _ESCAPES.sub("", screen.seen)


def test_ui_follows_a_listener_in_another_process(home: Path, screens: list[Screen], cli) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = {"VAPI_DEV_HOME": str(home)}
    with app_in_thread() as (url, _state, _):
        listener = cli("listen", url, "--tunnel", "none", "--port", str(port), "--json", env=env)
        assert listener.read_json_line()["event"] == "ready"
        run_cli("trigger", "status-update", "--to", f"http://127.0.0.1:{port}", env=env)
        screen = Screen(["ui"], home)
        screens.append(screen)
        screen.wait_for("1 exchanges")  # the past one, from the journal
        screen.wait_for(f"following the listener at http://127.0.0.1:{port}")
        out = run_cli("trigger", "tool-calls", "--to", f"http://127.0.0.1:{port}", env=env)
        assert out.returncode == 0, out.stderr
        screen.wait_for("2 exchanges")  # live
        screen.wait_for("get_weather")
        code, _, _ = listener.interrupt()
        assert code == 0
        screen.wait_for("no listener running")
        screen.press("q")
        assert screen.exit_code() == 0


def test_without_a_terminal_listen_ui_says_so_and_streams(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with app_in_thread() as (url, _state, _):
        p = cli("listen", url, "--ui", "--tunnel", "none", "--port", str(port), env={"VAPI_DEV_HOME": str(home)})
        line = p.read_stderr_line_containing("--ui needs a terminal")
        assert "(stdout is not a terminal): showing the line stream instead." in line
        p.read_stdout_until("Waiting for events")  # the usual banner
        code, _, err = p.interrupt()
        assert code == 0 and "Traceback" not in err


def test_listen_ui_with_json_streams_ndjson(cli, home: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with app_in_thread() as (url, _state, _):
        p = cli(
            "listen", url, "--ui", "--json", "--tunnel", "none", "--port", str(port), env={"VAPI_DEV_HOME": str(home)}
        )
        assert p.read_json_line()["event"] == "ready"
        assert "--json writes NDJSON on stdout" in p.read_stderr_line_containing("--ui needs a terminal")
        code, _, _ = p.interrupt()
        assert code == 0


def test_ui_without_a_terminal_exits_2_with_one_sentence(home: Path) -> None:
    out = run_cli("ui", env={"VAPI_DEV_HOME": str(home)})
    assert out.returncode == 2
    assert out.stderr.startswith("error: vapi-dev ui needs a terminal (stdout is not a terminal)")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_ui_in_ci_exits_2_even_in_a_terminal(home: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    child = pexpect.spawn(SCRIPT, ["ui"], env={**env, "CI": "true", "VAPI_DEV_HOME": str(home)}, encoding="utf-8")
    child.expect(pexpect.EOF, timeout=15)
    child.close()
    assert child.exitstatus == 2 and "needs a terminal (CI is set)" in (child.before or "")


def test_listen_ui_on_a_port_in_use_says_so_in_one_line(home: Path, screens: list[Screen]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        screen = Screen(["listen", "3000", "--ui", "--tunnel", "none", "--port", str(busy.getsockname()[1])], home)
        screens.append(screen)
        assert screen.exit_code() == 1
    text = _ESCAPES.sub("", screen.seen)
    assert "error: port" in text and "is already in use" in text
    assert "Traceback" not in text and "Error" not in text.replace("error:", "")
