"""--secret-file, --bearer-file and --hmac-secret-file keep credentials off the command line (real CLI)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.support.apps import AppState
from tests.support.cli import run_cli
from tests.support.http_client import post

SECRET = "s3cret-from-a-file"
BODY = json.dumps({"message": {"type": "status-update", "status": "in-progress", "call": {"id": "c1"}}}).encode()


async def test_listen_and_trigger_read_credentials_from_files(
    fake_app: tuple[str, AppState], cli: Any, tmp_path: Path
) -> None:
    base, _ = fake_app
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")  # as `echo` writes it: the newline is not part of the secret
    proc = cli("listen", base, "--port", "0", "--json", "--secret-file", str(secret_file), "--enforce-auth")
    ready = await asyncio.to_thread(proc.read_json_line)
    assert SECRET not in Path(f"/proc/{proc.proc.pid}/cmdline").read_bytes().decode(errors="replace")
    assert (await post(ready["local_url"], BODY, {"X-Vapi-Secret": SECRET})).status == 200
    assert (await asyncio.to_thread(proc.read_json_line))["auth"]["ok"]
    # trigger signs with the secret read from standard input
    sent = await asyncio.to_thread(
        run_cli, "trigger", "status-update", "--to", ready["local_url"], "--secret-file", "-", input=SECRET.encode()
    )
    assert sent.returncode == 0, sent.stderr
    assert (await asyncio.to_thread(proc.read_json_line))["auth"]["ok"]
    code, out, err = await asyncio.to_thread(proc.interrupt)
    assert code == 0 and SECRET not in out + err


def test_credential_file_errors_are_one_line_exit_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases = [
        (["listen", "--port", "0", "--secret", "x", "--secret-file", str(empty)], "not both"),
        (["listen", "--port", "0", "--bearer-file", str(tmp_path / "missing")], "cannot read --bearer-file"),
        (["listen", "--port", "0", "--hmac-secret-file", str(empty)], "is empty"),
        (["trigger", "hang", "--to", "http://127.0.0.1:1", "--secret-file", str(empty)], "is empty"),
        (["replay", "last", "--secret-file", str(tmp_path / "missing")], "cannot read --secret-file"),
    ]
    for args, text in cases:
        r = run_cli(*args, env={"NO_COLOR": "1"})
        assert r.returncode == 2 and text in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
