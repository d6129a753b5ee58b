"""Whether the inspector can run here: a full-screen app needs a terminal on both ends (no Textual import)."""

from __future__ import annotations

import os
from typing import TextIO


def not_a_terminal(stdin: TextIO, stdout: TextIO, *, json: bool = False) -> str | None:
    """Why the inspector cannot take this terminal (a few words), or None when it can."""
    if json:
        return "--json writes NDJSON on stdout"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        return "CI is set"
    if os.environ.get("TERM") == "dumb":
        return "TERM is dumb"
    if not _isatty(stdout):
        return "stdout is not a terminal"
    if not _isatty(stdin):
        return "stdin is not a terminal"
    return None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed, or replaced by something that is no file
        return False
