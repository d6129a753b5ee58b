"""A body as people read it: pretty JSON or text, masked; the diff of two replies; editing one in $EDITOR.

Shared by `show`, `replay` and the inspector. What these return is masked but not yet escaped for a terminal
(``output/lines.printable*`` does that where it is shown).
"""

from __future__ import annotations

import difflib
import json
import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from vapi_dev.errors import VapiDevError
from vapi_dev.redact import Masker


class EditError(VapiDevError):
    """The editor could not start or failed, or left nothing to send; ``message`` says which."""


def body_view(body: bytes, mask: Masker | None) -> tuple[str, bool]:
    """(text, is_json): pretty JSON when the body is JSON, else the text (undecodable bytes replaced); masked
    by ``mask`` (None: as it is). JSON too deeply nested to parse or print is shown as its text."""
    masker = mask or Masker(enabled=False)
    view, is_json = masker.body(body)
    if is_json:
        try:
            return json.dumps(view, indent=2, ensure_ascii=False), True
        except (RecursionError, ValueError):
            view = masker.text(body.decode("utf-8", "replace"))
    return str(view), False


def body_text(body: bytes, mask: Masker | None = None) -> str:
    """Pretty JSON when the body is JSON, else the text (undecodable bytes replaced); masked by ``mask``."""
    return body_view(body, mask)[0]


def reply_diff(old: bytes, new: bytes, mask: Masker) -> list[str]:
    """The unified diff of two reply bodies (recorded → new), as ``replay`` prints it; masked."""
    return list(
        difflib.unified_diff(
            body_text(old, mask).splitlines(),
            body_text(new, mask).splitlines(),
            "recorded reply",
            "new reply",
            lineterm="",
            n=2,
        )
    )


def edit_body(body: bytes) -> bytes | None:
    """Open $VISUAL/$EDITOR on the body (pretty JSON when it is JSON); None when the edit changed nothing, so
    the caller sends the recorded bytes exactly. Raises EditError when the editor cannot start or fails, or
    leaves the file empty or not UTF-8. The editor needs the terminal: a full-screen caller suspends first."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    original = body_text(body)
    fd, name = tempfile.mkstemp(suffix=".json", prefix="vapi-dev-replay-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(original + "\n")
        try:
            rc = subprocess.run([*shlex.split(editor), name], check=False).returncode
        except OSError as exc:
            raise EditError(f"cannot start the editor {editor!r} ({exc.strerror}); set $EDITOR.") from None
        if rc != 0:
            raise EditError(f"the editor exited with status {rc}; nothing was sent.")
        edited = Path(name).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise EditError("the edited body is not UTF-8 text; nothing was sent.") from None
    finally:
        os.unlink(name)
    if not edited.strip():
        raise EditError("the edited body is empty; nothing was sent.")
    if edited.strip() == original.strip():
        return None
    return edited.rstrip("\n").encode()
