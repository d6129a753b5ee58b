"""The one error base every user-facing failure derives from, and the exit codes the CLI returns.

The engine raises a VapiDevError subclass carrying one plain sentence (``message``) that says what
happened and what to do; the CLI catches VapiDevError once, at its edge, prints the sentence and
exits with the error's ``exit_status``.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What a vapi-dev command's exit code means."""

    OK = 0
    RUNTIME = 1  # something failed while running (app unreachable, journal unreadable, check failed)
    USAGE = 2  # the command line or an input file cannot work as given
    INTERRUPTED = 130  # Ctrl-C before the command finished its work


class VapiDevError(Exception):
    """A failure to report in one sentence; ``exit_status`` is what the CLI exits with."""

    exit_status: ExitStatus = ExitStatus.RUNTIME

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
