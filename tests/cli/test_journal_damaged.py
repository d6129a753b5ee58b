"""A journal with damaged pages is found when a listener starts: one clear line, not a failure mid-call."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.exchanges import make_exchange
from vapi_dev.journal.store import Journal


def test_listen_refuses_a_damaged_journal_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    j = Journal(path)
    j.append([make_exchange("tool-calls", {"results": []}) for _ in range(200)])
    j.close()
    with sqlite3.connect(path) as db:  # fold the WAL in, so the damage below hits the only copy
        db.execute("PRAGMA journal_mode=DELETE")
    assert os.path.getsize(path) > 4096 * 8
    with open(path, "r+b") as fh:  # a torn write or a bad disk: one b-tree page overwritten
        fh.seek(4096 * 3)
        fh.write(b"\xff" * 4096)
    r = run_cli("listen", "3000", "--port", "0", "--tunnel", "none", "--journal", str(path), env={"NO_COLOR": "1"})
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "is damaged (integrity check: Page" in r.stderr and "--journal" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "\\n" not in r.stderr  # sqlite's multi-line verdict is folded into the sentence
