"""`vapi-dev restore`: put back the Vapi server URLs that a crashed or killed `listen` left pointed at its tunnel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vapi_dev.cli.common import fail, guarded


def restore(
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="VAPI_API_KEY", show_default=False,
                     help="Vapi private API key (default: $VAPI_API_KEY). Never printed."),
    ] = None,
    vapi_api_url: Annotated[
        str | None,
        typer.Option("--vapi-api-url", show_default=False,
                     help="Vapi API base URL (default: the one the listen run used)."),
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option("--state", show_default=False, dir_okay=False,
                     help="Wiring state file (default: wiring-state.json in the vapi-dev state directory)."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Restore even though the run that made the changes still runs.")
    ] = False,
) -> None:  # fmt: skip
    """Restore the server URLs an earlier `listen --assistant/--phone-number/--tool` run changed."""
    # The wiring (and with it aiohttp) only when the command runs, so `--help` stays light (see cli/common.py).
    import asyncio

    from vapi_dev.wiring.state import RestoreIncomplete, default_state_path, pending_state, restore_from_state

    path = state or default_state_path()
    pending = pending_state(path)
    if pending is None:
        typer.echo("Nothing to restore: no earlier run left Vapi resources pointed at a tunnel.")
        return
    try:
        lines = asyncio.run(restore_from_state(path, api_key, vapi_api_url, force=force))
    except RestoreIncomplete as exc:
        for line in exc.lines:
            typer.echo(f"  {line}")
        fail(exc.message)
    if not lines:
        typer.echo("Nothing to restore: no earlier run left Vapi resources pointed at a tunnel.")
        return
    for line in lines:
        typer.echo(f"  {line}")
    typer.echo(f"Restored {len(lines)} resource(s); the record {path} was removed.")


def register(app: typer.Typer) -> None:
    """Add the `restore` command to the main app."""
    app.command("restore")(guarded(restore))
