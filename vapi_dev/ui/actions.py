"""What the inspector's keys do to an exchange, without Textual: replay (and the diff of the replies), edit a
body in $EDITOR, the text ``y`` copies, the fixture ``s`` saves. The app runs these and shows their results.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from vapi_dev.errors import VapiDevError
from vapi_dev.exchange import Exchange
from vapi_dev.journal.fixtures import Request, fixture
from vapi_dev.output.bodies import body_text, reply_diff
from vapi_dev.output.lines import printable
from vapi_dev.redact import MASK, Masker
from vapi_dev.resend import Reply, replayed, send_async, target_url
from vapi_dev.vapi.auth import AuthConfig

DIFF_SHOWN = 400  # lines of a reply diff shown
RESIGN = {"x-vapi-secret": "secret", "authorization": "bearer", "x-signature": "hmac_secret"}


class ActionError(VapiDevError):
    """An action could not be done; ``message`` is the one sentence the status line shows."""


def replay_url(ex: Exchange, to: str | None) -> str:
    if to:
        return target_url(to, ex.path, ex.query)
    if ex.forward_url:
        return ex.forward_url
    raise ActionError(f"{ex.id} was not forwarded anywhere; start the inspector with --to URL to replay it.")


def masked_headers(ex: Exchange) -> list[str]:
    """The request headers the journal kept masked (never re-sent as they are)."""
    return [k.lower() for k, v in ex.headers if MASK in v]


def resign_note(ex: Exchange, auth: AuthConfig) -> str:
    """Which masked headers are signed again with the inspector's credentials, and which are not sent."""
    masked = masked_headers(ex)
    if not masked:
        return ""
    signed = [n for n in masked if n in RESIGN and getattr(auth, RESIGN[n])]
    unsent = [n for n in masked if n not in signed]
    parts = [f"signed again: {', '.join(signed)}"] if signed else []
    if unsent:
        parts.append(f"not sent: {', '.join(unsent)} (give --secret, --bearer or --hmac-secret to sign it again)")
    return f"recorded with {', '.join(masked)} masked; " + "; ".join(parts)


@dataclass
class ReplayResult:
    old: Exchange
    new: Exchange
    reply: Reply
    url: str
    note: str
    diff: list[str]


async def replay(
    ex: Exchange, *, to: str | None, auth: AuthConfig, mask: Masker, timeout: float = 30.0, body: bytes | None = None
) -> ReplayResult:
    """Send ``ex`` (its raw request; ``body`` instead of its body) to the app again, re-signed, and check the
    new reply. Raises ActionError (a cut body) or resend.SendError (nothing listening, no reply)."""
    if ex.request_truncated and body is None:
        raise ActionError(f"the request body of {ex.id} was cut in the journal; e edits a whole one to send instead.")
    url = replay_url(ex, to)
    sent = ex.body if body is None else body
    req = Request(ex.method, ex.path, ex.query, ex.headers, sent, ex.message_type or "")
    reply = await send_async(
        req, url, auth, timeout, " — is the app running? (or start the inspector with --to)", mask=mask
    )
    new = replayed(ex, sent, url, reply)
    lines = [] if ex.response_body == reply.body else reply_diff(ex.response_body, reply.body, mask)
    return ReplayResult(ex, new, reply, url, resign_note(ex, auth), lines)


def replay_text(result: ReplayResult, mask: Masker) -> Text:
    """The Replay tab: where it went, recorded against now, the reply diff, the new reply's problems."""
    old, new, reply = result.old, result.new, result.reply
    t = Text(f"replayed {printable(old.id)} → {printable(mask.text(result.url))}\n", style="bold")
    if result.note:
        t.append(printable(result.note, None) + "\n", style="yellow")
    recorded = str(old.status) if old.status is not None else (old.error_kind or "error")
    t.append(f"{'':8}{'recorded':>10}  {'now':>10}\n", style="dim")
    t.append(f"{'status':8}{printable(recorded):>10}  ")
    t.append(f"{reply.status:>10}\n", style="green" if 200 <= reply.status < 300 else "bold red")
    took = "—" if old.duration_ms is None else f"{old.duration_ms:.0f} ms"
    t.append(f"{'latency':8}{took:>10}  {reply.ms:>7.0f} ms\n")
    t.append(f"{'bytes':8}{old.response_bytes:>10}  {len(reply.body):>10}\n")
    if not result.diff:
        t.append("reply body: identical\n", style="green")
    else:
        t.append("reply body diff\n", style="bold")
        for line in result.diff[:DIFF_SHOWN]:
            style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
            t.append(printable(line, None) + "\n", style=style)
        if len(result.diff) > DIFF_SHOWN:
            t.append(f"… {len(result.diff) - DIFF_SHOWN} more lines\n", style="dim")
    if new.problems:
        for p in new.problems:
            t.append(f"{p.level}: {printable(mask.text(p.message), None)} [{printable(p.code)}]\n", style="red")
    elif old.message_type:
        t.append("reply contract: ok\n", style="green")
    return t


def copy_text(ex: Exchange, section: str, mask: Masker) -> tuple[str, str]:
    """(what, text) ``y`` copies from the tab shown: the reply body on Reply, else the request body; masked."""
    if section == "reply":
        return "reply body", body_text(ex.response_body, mask)
    return "request body", body_text(ex.body, mask)


def copy_terminal_can() -> bool:
    """Whether the terminal is known to take an OSC 52 copy (macOS Terminal and the Linux console do not)."""
    return os.environ.get("TERM_PROGRAM") != "Apple_Terminal" and os.environ.get("TERM") not in ("linux", "dumb")


_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def save_fixture(ex: Exchange, mask: Masker, folder: Path) -> Path:
    """Write ``ex`` as a one-exchange fixture (the `export` format, masked) that `trigger --file` sends again."""
    name = _UNSAFE.sub("-", f"vapi-dev-{ex.message_type or 'http'}-{ex.id}")[:120] + ".json"
    path = folder / name
    try:
        text = json.dumps(fixture(ex.call_id or ex.id, [ex], mask), indent=2, ensure_ascii=False) + "\n"
    except RecursionError:
        raise ActionError(f"{ex.id} has a body nested too deeply to write as JSON.") from None
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ActionError(f"cannot write {path} ({exc.strerror}).") from None
    return path
