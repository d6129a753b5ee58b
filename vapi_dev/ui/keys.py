"""What the exchange keys do in the app (r, e, y, s): run an action of actions.py on the selected exchange and
say how it went on the notice line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import SuspendNotSupported

from vapi_dev.errors import VapiDevError
from vapi_dev.exchange import Exchange
from vapi_dev.output.bodies import edit_body
from vapi_dev.ui import actions

if TYPE_CHECKING:
    from vapi_dev.ui.app import InspectorApp


def _selected(app: InspectorApp) -> Exchange | None:
    ex = app.event_list.selected
    if ex is None:
        app.say("no exchange selected", "warning")
    return ex


def replay(app: InspectorApp) -> None:
    ex = _selected(app)
    if ex is not None:
        app.run_worker(_replay(app, ex, None), group="replay", exit_on_error=False)


def edit(app: InspectorApp) -> None:
    """Open $EDITOR on the request body (the screen handed over meanwhile), then replay what was saved."""
    ex = _selected(app)
    if ex is None:
        return
    try:
        raw = app.raw(ex)
        try:
            with app.suspend():
                body = edit_body(raw.body)
        except SuspendNotSupported:  # no terminal to hand over (headless): the editor runs all the same
            body = edit_body(raw.body)
    except VapiDevError as e:
        app.say(e.message, "error")
        return
    if body is None:
        app.say("body unchanged; sending the recorded bytes")
    app.run_worker(_replay(app, ex, body), group="replay", exit_on_error=False)


async def _replay(app: InspectorApp, ex: Exchange, body: bytes | None) -> None:
    app.say(f"replaying {ex.id}…")
    try:
        result = await actions.replay(
            app.raw(ex), to=app.to, auth=app.auth, mask=app.mask, timeout=app.replay_timeout, body=body
        )
    except VapiDevError as e:
        app.say(e.message, "error")
        return
    except Exception as e:  # the inspector stays up whatever the app or the library did
        app.say(f"the replay of {ex.id} failed: {type(e).__name__}: {app.mask.text(str(e))}", "error")
        return
    app.details.show_replay(ex.id, actions.replay_text(result, app.mask))
    verdict = "ok" if 200 <= result.reply.status < 300 and not result.new.problems else "see the Replay tab"
    app.say(f"replayed {ex.id}: {result.reply.status} in {result.reply.ms:.0f} ms — {verdict}")


def copy(app: InspectorApp) -> None:
    """Copy the body of the tab shown through the terminal (OSC 52); where it cannot, say what else to do."""
    ex = _selected(app)
    if ex is None:
        return
    what, text = actions.copy_text(ex, app.details.active, app.mask)
    app.copy_to_clipboard(text)
    app.copied.append(text)
    if actions.copy_terminal_can():
        app.say(f"copied the {what} of {ex.id} ({len(text)} characters) to the clipboard (OSC 52)")
    else:
        app.say(
            f"this terminal may not take a copy (OSC 52): `vapi-dev show {ex.id}` prints the {what}, "
            "s saves it as a file",
            "warning",
        )


def save(app: InspectorApp) -> None:
    ex = _selected(app)
    if ex is None:
        return
    try:
        path = actions.save_fixture(ex, app.mask, app.save_dir)
    except VapiDevError as e:
        app.say(e.message, "error")
        return
    app.say(f"saved {path} — `vapi-dev trigger --file {path.name}` sends it again")
