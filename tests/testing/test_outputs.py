"""`vapi-dev test --junit FILE` (parsed back with xml.etree) and `--json` (NDJSON records)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from tests.testing.apps import CALL, Running, vapi_test, write_fixture


def test_junit_has_a_suite_per_file_a_case_per_exchange_and_the_failures(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "a.json", CALL)
    write_fixture(tmp_path / "b.json", CALL[:1])
    (tmp_path / "c.json").write_text("[]")
    out = tmp_path / "report.xml"
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/wrong", "--junit", str(out))
    assert r.returncode == 1, r.stdout
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("5", "2", "1")
    suites = {s.get("name", "").rsplit("/", 1)[-1]: s for s in root.iter("testsuite")}
    assert set(suites) == {"a.json", "b.json", "c.json"}
    a = suites["a.json"]
    assert (a.get("tests"), a.get("failures")) == ("3", "2")
    names = [c.get("name") for c in a.iter("testcase")]
    assert names == ["0 status-update", "1 tool-calls", "2 assistant-request"]
    cases = list(a.iter("testcase"))
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("type") == "contract"
    assert "'results' is str, not an array" in (failure.get("message") or "")
    assert "[tool-calls.results-not-array]" in (failure.text or "") and '"results": "Sunny"' in (failure.text or "")
    assert float(cases[1].get("time") or -1) >= 0
    error = next(suites["c.json"].iter("testcase")).find("error")
    assert error is not None and "neither a Vapi payload" in (error.get("message") or "")


def test_json_writes_a_record_per_case_then_the_summary(app: Running, tmp_path: Path) -> None:
    write_fixture(tmp_path / "a.json", CALL)
    (tmp_path / "z.json").write_text("nope")
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/wrong", "--json")
    assert r.returncode == 1
    records = [json.loads(line) for line in r.stdout.splitlines()]
    assert [rec["event"] for rec in records] == ["bad-file", "case", "case", "case", "summary"]
    assert records[0]["file"].endswith("z.json") and "is not JSON" in records[0]["error"]
    cases = records[1:4]
    assert [c["passed"] for c in cases] == [True, False, False]
    assert [c["message_type"] for c in cases] == ["status-update", "tool-calls", "assistant-request"]
    assert cases[1]["status"] == 200 and cases[1]["duration_ms"] >= 0 and cases[1]["url"] == f"{app.url}/wrong"
    assert cases[1]["failures"][0]["what"] == "contract"
    summary = records[-1]
    assert (summary["passed"], summary["failed"], summary["bad_files"]) == (1, 2, 1)


def test_jobs_run_files_at_once_and_keep_each_files_order(app: Running, tmp_path: Path) -> None:
    for n in range(4):
        write_fixture(tmp_path / f"call{n}.json", CALL, call_id=f"call_{n}")
    r = vapi_test(str(tmp_path), "--against", f"{app.url}/right", "--jobs", "4", "--json")
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout.splitlines()[-1])["passed"] == 12
    by_call: dict[str, list[str]] = {}
    for seen in app.state.seen:
        msg = json.loads(seen["body"])["message"]
        by_call.setdefault(msg["call"]["id"], []).append(msg["type"])
    assert all(types == [t for t, _ in CALL] for types in by_call.values()) and len(by_call) == 4
