"""`vapi-dev ui`: the inspector on the journal, following a listener that runs in another terminal."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from vapi_dev.cli.common import (
    BearerFileOpt,
    BearerOpt,
    HmacFileOpt,
    HmacOpt,
    JournalOpt,
    SecretFileOpt,
    SecretOpt,
    TimeoutOpt,
    auth_config,
    fail,
    masker,
)
from vapi_dev.errors import ExitStatus

# Textual, sqlite3 and aiohttp are imported when the command runs, so `vapi-dev --help` stays light.


def listener_state() -> str | None:
    """What the status line says of the listeners running now (the registry `trigger` reads too)."""
    from vapi_dev.cli.running import running_listeners

    found = running_listeners()
    if not found:
        return "no listener running: browsing the journal"
    first = found[0]
    more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
    return f"following the listener at {first.url} (pid {first.pid}){more}"


def ui(
    journal: JournalOpt = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", metavar="URL", help="Replay to this URL or port (default: where each exchange was forwarded)."
        ),
    ] = None,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    secret_file: SecretFileOpt = None,
    bearer_file: BearerFileOpt = None,
    hmac_secret_file: HmacFileOpt = None,
    timeout: TimeoutOpt = 30.0,
    show_secrets: Annotated[
        bool,
        typer.Option("--show-secrets", help="Do not mask credential-like fields, secret parameters and values."),
    ] = False,
) -> None:
    """The interactive inspector on the journal: browse past exchanges, follow a running listener live
    (new exchanges within 250 ms), replay, edit, copy and save them. Needs a terminal."""
    from vapi_dev.journal.store import default_journal_path
    from vapi_dev.ui.tty import not_a_terminal

    why = not_a_terminal(sys.stdin, sys.stdout)
    if why is not None:
        fail(
            f"vapi-dev ui needs a terminal ({why}); `vapi-dev events` lists the journal and `vapi-dev show ID` "
            "prints one exchange.",
            ExitStatus.USAGE,
        )
    auth = auth_config(secret, bearer, hmac_secret, (secret_file, bearer_file, hmac_secret_file))
    path = journal or default_journal_path()
    if path.is_dir():
        fail(f"{path} is a directory, not a journal file; pass --journal FILE.", ExitStatus.USAGE)
    from vapi_dev.ui.app import InspectorApp

    app = InspectorApp(
        masker(auth, show_secrets=show_secrets),
        auth=auth,
        to=to,
        journal=path,
        journal_masked=not show_secrets,
        listeners=listener_state,
        replay_timeout=timeout,
    )
    app.run()
