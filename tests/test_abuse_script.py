"""scripts/abuse.py runs end to end (its quick subset) and prints its table: a smoke test, not a verdict.

What vapi-dev does under each case is what the table reports; the tests of those behaviours live beside
the code (tests/proxy/, tests/cli/). Here only the script itself is checked: it starts the app and the real
console script, runs its cases, prints one row per case, and leaves no process behind.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "abuse.py"
CONSOLE = Path(sys.executable).with_name("vapi-dev")


@pytest.mark.timeout(240)
def test_quick_run_prints_the_table_and_exits_0() -> None:
    if not CONSOLE.exists():
        pytest.skip("the vapi-dev console script is not installed next to this Python")
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True, timeout=200, cwd=ROOT, env=os.environ
    )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert "| case | what the caller got | what the app got | stayed up & served the next request |" in r.stdout
    rows = [ln for ln in lines if ln.startswith("| ") and not ln.startswith("| case ")]
    listed = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, timeout=30)
    quick = [ln for ln in listed.stdout.splitlines() if ln.endswith("(quick)")]
    assert len(rows) == len(quick) >= 3, r.stdout
    assert "script error" not in r.stdout, r.stdout
    assert "runtime:" in r.stdout


@pytest.mark.timeout(120)
def test_one_case_as_json() -> None:
    if not CONSOLE.exists():
        pytest.skip("the vapi-dev console script is not installed next to this Python")
    r = subprocess.run(
        [sys.executable, str(SCRIPT), "--case", "edge-connect", "--json"],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(r.stdout)
    assert [row["case"][:2] for row in report["rows"]] == ["9c"]
    assert report["rows"][0]["served"].startswith(("yes", "NO"))
