"""`vapi-dev test --samples`: every sample type sent, a verdict for each, a table and a summary."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.testing.apps import Running, vapi_test
from vapi_dev.vapi.messages import MESSAGE_TYPES
from vapi_dev.vapi.samples import SAMPLE_TYPES

REPLY_NEEDED = [t for t in SAMPLE_TYPES if MESSAGE_TYPES[t].reply_needed]
INFORMATIONAL = len(SAMPLE_TYPES) - len(REPLY_NEEDED)


def rows(stdout: str) -> dict[str, str]:
    """type → the rest of its table row."""
    out = {}
    for line in stdout.splitlines():
        name, _, rest = line.partition(" ")
        if name in SAMPLE_TYPES:
            out[name] = rest
    return out


def test_a_right_app_answers_every_reply_needed_type_and_acknowledges_the_rest(app: Running) -> None:
    r = vapi_test("--samples", "--against", f"{app.url}/right")
    assert r.returncode == 0, r.stdout + r.stderr
    table = rows(r.stdout)
    assert set(table) == set(SAMPLE_TYPES)  # every type trigger --list shows
    assert re.search(r"yes \(7\.5 s\)\s+200\s+\d+ ms\s+answered correctly", table["assistant-request"])
    assert re.search(r"no\s+200\s+\d+ ms\s+acknowledged", table["status-update"])
    assert f"reply needed: {len(REPLY_NEEDED)} answered correctly · informational: {INFORMATIONAL} acknowledged" in (
        r.stdout
    )


def test_a_wrong_app_fails_the_contracts_it_breaks(app: Running, tmp_path: Path) -> None:
    junit = tmp_path / "samples.xml"
    r = vapi_test("--samples", "--against", f"{app.url}/wrong", "--junit", str(junit))
    assert r.returncode == 1, r.stdout
    table = rows(r.stdout)
    assert "failed contract" in table["tool-calls"] and "'results' is str, not an array" in table["tool-calls"]
    assert "failed contract" in table["assistant-request"]
    assert "answered correctly" in table["function-call"]
    assert f"{len(REPLY_NEEDED) - 2} answered correctly, 2 failed contract" in r.stdout
    root = ET.parse(junit).getroot()
    assert root.get("tests") == str(len(SAMPLE_TYPES)) and root.get("failures") == "2"


def test_rejections_are_reported_but_do_not_fail_the_run(app: Running) -> None:
    r = vapi_test("--samples", "--against", f"{app.url}/reject", "--json")
    assert r.returncode == 0, r.stdout
    records = [json.loads(line) for line in r.stdout.splitlines()]
    cases = [rec for rec in records if rec["event"] == "case"]
    assert {c["verdict"] for c in cases} == {"rejected"} and len(cases) == len(SAMPLE_TYPES)
    assert cases[0]["warnings"][0] == "rejected: the app answered 404"
    assert records[-1]["event"] == "summary" and f"{len(REPLY_NEEDED)} rejected" in records[-1]["conformance"]


def test_a_slow_acknowledgement_is_too_slow_and_a_reset_failed(app: Running) -> None:
    app.state.delay_s = 0.12
    slow = vapi_test("--samples", "--against", f"{app.url}/slowack", "--ack-within", "0.05")
    assert slow.returncode == 1, slow.stdout
    table = rows(slow.stdout)
    assert "too slow" in table["status-update"] and "over 0.05 s (--ack-within)" in table["status-update"]
    assert "answered correctly" in table["tool-calls"]
    crash = vapi_test("--samples", "--against", f"{app.url}/crash")
    assert crash.returncode == 1
    assert all("failed" in row for row in rows(crash.stdout).values())
    assert f"{len(SAMPLE_TYPES)} got no reply" in crash.stdout
