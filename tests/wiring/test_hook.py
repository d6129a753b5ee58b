"""Auto-wiring against the local stand-in of the Vapi API: patch at start, re-point, restore, roll back."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.fake_vapi_api import FakeVapiApi
from vapi_dev.exchange import Notice
from vapi_dev.vapi.api import InvalidApiKey, ResourceNotFound, VapiApiError
from vapi_dev.wiring.hook import WiringConfig, build, join_url
from vapi_dev.wiring.notes import Resource, precedence_notes
from vapi_dev.wiring.state import WiringError, pending_state, restore_from_state

KEY = "sk-test-9f8e7d6c5b4a"
SERVER = {
    "url": "https://prod.example.com/vapi",
    "credentialId": "cred_1",
    "headers": {"x-team": "blue"},
    "timeoutSeconds": 20,
    "backoffPlan": {"type": "exponential", "maxRetries": 3, "baseDelaySeconds": 1},
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeVapiApi]:
    f = FakeVapiApi(KEY)
    f.add("assistant", {"id": "asst_1", "name": "Weather bot", "server": SERVER,
                        "model": {"provider": "openai", "model": "gpt-4o"}})  # fmt: skip
    f.add("assistant", {"id": "asst_2", "name": "Bare"})  # no server at all
    f.add("phone-number", {"id": "pn_1", "provider": "vonage", "number": "+15550100",
                           "server": {"url": "https://old.example.com/pn", "timeoutSeconds": 7}})  # fmt: skip
    f.add("tool", {"id": "tool_1", "type": "function", "function": {"name": "get_weather"},
                   "server": {"url": "https://tools.example.com/t", "headers": {"a": "b"}}})  # fmt: skip
    await f.start()
    yield f
    await f.stop()


class Notices:
    def __init__(self) -> None:
        self.items: list[Notice] = []

    def __call__(self, n: Notice) -> None:
        self.items.append(n)

    @property
    def text(self) -> str:
        return "\n".join(f"{n.level}: {n.text}" for n in self.items)


def cfg(fake: FakeVapiApi, tmp_path: Path, **kw: Any) -> WiringConfig:
    base: dict[str, Any] = {"api_key": KEY, "api_url": fake.url, "state_path": tmp_path / "state.json"}
    base.update(kw)
    return WiringConfig(**base)


def snapshot(fake: FakeVapiApi) -> dict[tuple[str, str], Any]:
    return {k: v.get("server") for k, v in fake.resources.items()}


async def test_patch_at_start_keeps_other_fields_and_restores_on_stop(fake: FakeVapiApi, tmp_path: Path) -> None:
    before = snapshot(fake)
    notes = Notices()
    c = cfg(fake, tmp_path, assistants=("asst_1", "asst_2"), phone_numbers=("pn_1",), tools=("tool_1",),
            path="/webhook")  # fmt: skip
    hook = build(c, notes)
    await hook.prepare()
    assert fake.patches() == []  # prepare reads only
    await hook.on_public_url("https://abc.ngrok.app")
    url = "https://abc.ngrok.app/webhook"
    a1 = fake.get("assistant", "asst_1")["server"]
    assert a1 == {**SERVER, "url": url}  # credentialId, headers, timeoutSeconds, backoffPlan kept
    assert fake.get("assistant", "asst_2")["server"] == {"url": url}
    assert fake.get("phone-number", "pn_1")["server"] == {"url": url, "timeoutSeconds": 7}
    assert fake.get("tool", "tool_1")["server"] == {"url": url, "headers": {"a": "b"}}
    pn_patch = next(b for p, b in fake.patches() if p == "/phone-number/pn_1")
    assert pn_patch["provider"] == "vonage"
    assert f"assistant asst_1 (Weather bot): server.url → {url} (was https://prod.example.com/vapi)" in notes.text
    assert "assistant asst_2 (Bare): server.url → " + url + " (was unset)" in notes.text
    # The plan is on disk, private, while the run lasts.
    state_file = tmp_path / "state.json"
    assert stat.S_IMODE(os.stat(state_file).st_mode) == 0o600
    assert KEY not in state_file.read_text()
    pend = pending_state(state_file)
    assert pend is not None and not pend.running and len(pend.items) == 4

    await hook.on_stop()
    assert snapshot(fake) == before
    assert "server" not in fake.get("assistant", "asst_2")  # removed again, not left as {}
    assert not state_file.exists()
    assert pending_state(state_file) is None
    assert "server.url restored to https://prod.example.com/vapi" in notes.text
    assert "assistant asst_2 (Bare): server setting removed again" in notes.text
    assert KEY not in notes.text


async def test_url_change_repoints(fake: FakeVapiApi, tmp_path: Path) -> None:
    notes = Notices()
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",), path="hook"), notes)
    await hook.on_public_url("https://one.ngrok.app")
    assert fake.get("assistant", "asst_1")["server"]["url"] == "https://one.ngrok.app/hook"
    n = len(fake.patches())
    await hook.on_public_url("https://one.ngrok.app")  # same URL: nothing to do
    assert len(fake.patches()) == n
    await hook.on_public_url("https://two.ngrok.app/")
    assert fake.get("assistant", "asst_1")["server"] == {**SERVER, "url": "https://two.ngrok.app/hook"}
    assert "tunnel URL changed" in notes.text
    await hook.on_stop()
    assert fake.get("assistant", "asst_1")["server"] == SERVER


async def test_failure_in_the_middle_rolls_back(fake: FakeVapiApi, tmp_path: Path) -> None:
    before = snapshot(fake)
    fake.fail_patch["pn_1"] = 400
    hook = build(cfg(fake, tmp_path, assistants=("asst_1", "asst_2"), phone_numbers=("pn_1",)), Notices())
    with pytest.raises(WiringError) as ei:
        await hook.on_public_url("https://abc.ngrok.app")
    assert "phone number pn_1" in ei.value.message and "nothing was changed" in ei.value.message
    assert "injected failure 400" in ei.value.message
    assert snapshot(fake) == before
    assert not (tmp_path / "state.json").exists()
    await hook.on_stop()  # nothing to do, must not raise
    assert snapshot(fake) == before


async def test_dropped_connection_rolls_back_even_the_failed_one(fake: FakeVapiApi, tmp_path: Path) -> None:
    before = snapshot(fake)
    fake.drop_patch.add("tool_1")
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",), tools=("tool_1",)), Notices())
    with pytest.raises(WiringError, match="could not reach the Vapi API"):
        await hook.on_public_url("https://abc.ngrok.app")
    assert snapshot(fake) == before


async def test_unknown_id_and_bad_key_fail_at_prepare(fake: FakeVapiApi, tmp_path: Path) -> None:
    hook = build(cfg(fake, tmp_path, assistants=("asst_1", "asst_nope")), Notices())
    with pytest.raises(ResourceNotFound, match="assistant asst_nope was not found"):
        await hook.prepare()
    bad = "sk-wrong-0000-secret"
    notes = Notices()
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",), api_key=bad), notes)
    with pytest.raises(InvalidApiKey) as ei:
        await hook.prepare()
    assert bad not in str(ei.value) and bad not in notes.text
    assert fake.patches() == []


async def test_restore_after_crash(fake: FakeVapiApi, tmp_path: Path) -> None:
    before = snapshot(fake)
    state_file = tmp_path / "state.json"
    hook = build(cfg(fake, tmp_path, assistants=("asst_1", "asst_2"), phone_numbers=("pn_1",)), Notices())
    await hook.on_public_url("https://crash.ngrok.app")
    await hook.on_public_url("https://crash2.ngrok.app")
    # Simulated crash: on_stop never runs; a fresh process only has the state file.
    saved = json.loads(state_file.read_text())
    assert saved["entries"][0]["urls"] == ["https://crash.ngrok.app", "https://crash2.ngrok.app"]
    lines = await restore_from_state(state_file, KEY, None)
    assert len(lines) == 3 and all("restored" in ln or "removed again" in ln for ln in lines)
    assert snapshot(fake) == before
    assert not state_file.exists()
    assert await restore_from_state(state_file, KEY, None) == []


async def test_restore_leaves_resources_changed_by_someone_else(fake: FakeVapiApi, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",)), Notices())
    await hook.on_public_url("https://x.ngrok.app")
    fake.resources[("assistant", "asst_1")]["server"] = {"url": "https://someone-else.example.com"}
    lines = await restore_from_state(state_file, KEY, None)
    assert "changed elsewhere" in lines[0]
    assert fake.get("assistant", "asst_1")["server"] == {"url": "https://someone-else.example.com"}


async def test_next_listen_undoes_leftovers_first(fake: FakeVapiApi, tmp_path: Path) -> None:
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",)), Notices())
    await hook.on_public_url("https://dead.ngrok.app")  # then "killed"
    notes = Notices()
    hook2 = build(cfg(fake, tmp_path, assistants=("asst_1",)), notes)
    await hook2.on_public_url("https://new.ngrok.app")
    assert "earlier run did not restore" in notes.text
    await hook2.on_stop()
    assert fake.get("assistant", "asst_1")["server"] == SERVER  # the true original, not the dead URL


async def test_network_failure_on_stop_keeps_state(fake: FakeVapiApi, tmp_path: Path) -> None:
    state_file = tmp_path / "state.json"
    notes = Notices()
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",)), notes)
    await hook.on_public_url("https://x.ngrok.app")
    await fake.stop()  # the API goes away: on_stop must report, not raise
    await hook.on_stop()
    assert "run `vapi-dev restore`" in notes.text
    assert state_file.exists()
    with pytest.raises(VapiApiError, match="could not reach the Vapi API"):
        await restore_from_state(state_file, KEY, None)
    assert state_file.exists()


def test_precedence_notes() -> None:
    asst = Resource("assistant", "a1", {"name": "A", "model": {
        "tools": [{"type": "function", "function": {"name": "inline_fn"}, "server": {"url": "https://t1"}}],
        "toolIds": ["t2", "t3"]}})  # fmt: skip
    pn = Resource("phone-number", "p1", {"assistantId": "a9"})
    related: dict[tuple[str, str], Any] = {
        ("tool", "t2"): {"server": {"url": "https://t2"}},
        ("tool", "t3"): {},
        ("assistant", "a9"): {"name": "Other", "server": {"url": "https://a9"}},
    }
    notes = precedence_notes([asst, pn], related)
    assert any("inline_fn" in n and "https://t1" in n for n in notes)
    assert any("tool t2" in n and "--tool t2" in n for n in notes)
    assert not any("t3" in n for n in notes)
    assert any("assistant a9 (Other)" in n and "--assistant a9" in n for n in notes)
    only_tools = precedence_notes([Resource("tool", "t2", {})])
    assert any("Dashboard → Settings → Organization → Server URL" in n for n in only_tools)


def test_join_url_and_disabled() -> None:
    assert join_url("https://a.app", "") == "https://a.app"
    assert join_url("https://a.app/", "webhook") == "https://a.app/webhook"
    assert join_url("https://a.app", "/w/x") == "https://a.app/w/x"
    assert not WiringConfig().enabled
    assert WiringConfig(tools=("t",)).enabled


async def test_disabled_needs_no_key(tmp_path: Path) -> None:
    hook = build(WiringConfig(state_path=tmp_path / "s.json"), Notices())
    await hook.prepare()
    await hook.on_public_url("https://x.app")
    await hook.on_stop()
    assert not (tmp_path / "s.json").exists()


async def test_state_of_a_live_run_is_not_touched(fake: FakeVapiApi, tmp_path: Path) -> None:
    import subprocess
    import sys

    state_file = tmp_path / "state.json"
    hook = build(cfg(fake, tmp_path, assistants=("asst_1",)), Notices())
    await hook.on_public_url("https://live.ngrok.app")
    other = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()", "vapi-dev"],
                             stdin=subprocess.PIPE)  # fmt: skip
    try:
        data = json.loads(state_file.read_text())
        data["pid"] = other.pid  # as if that process had made the changes
        state_file.write_text(json.dumps(data))
        pend = pending_state(state_file)
        assert pend is not None and pend.running and f"pid {other.pid}" in pend.text
        with pytest.raises(WiringError, match="still running"):
            await restore_from_state(state_file, KEY, None)
        with pytest.raises(WiringError, match="another vapi-dev"):
            await build(cfg(fake, tmp_path, assistants=("asst_1",)), Notices()).prepare()
        assert fake.get("assistant", "asst_1")["server"]["url"] == "https://live.ngrok.app"
        lines = await restore_from_state(state_file, KEY, None, force=True)
        assert "restored" in lines[0]
    finally:
        other.kill()
        other.wait(timeout=10)
    assert fake.get("assistant", "asst_1")["server"] == SERVER
