"""`vapi-dev test`: recorded exchanges (or every sample type) sent to the app and checked; options → engine.

The engine is vapi_dev/testing/ (load, expect, run, report, junit, conformance, start, update). Exit codes:
0 every test passed; 1 a test failed, or the app could not be started; 2 bad input: a bad option, no
fixtures, or a fixture that cannot be read or sent (reported with its file and why while the rest run) —
a failed test outranks a bad file, so a run with both exits 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vapi_dev.cli.common import (
    SECRET_ENVVARS,
    BearerFileOpt,
    BearerOpt,
    HmacFileOpt,
    HmacOpt,
    SecretFileOpt,
    SecretOpt,
    TimeoutOpt,
    auth_config,
    fail,
    masker,
    report,
    stdout_console,
)
from vapi_dev.errors import ExitStatus

if TYPE_CHECKING:
    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import BadFile, FileCases
    from vapi_dev.testing.report import NdjsonReport, TerminalReport
    from vapi_dev.testing.run import Options, Outcome
    from vapi_dev.testing.start import App
    from vapi_dev.vapi.auth import AuthConfig

# What the command needs beyond this is imported in its body, so `--help` stays light (see cli/common.py).


def _masker(auth: AuthConfig, against: str) -> Masker:
    """The run's Masker: the credentials given (and in the environment), and the password of ``against``
    when it has one (``http://user:password@host``), which the URLs quoted in every output would show."""
    from urllib.parse import urlsplit

    from vapi_dev.redact import Masker
    from vapi_dev.resend import base_url

    password = urlsplit(base_url(against)).password
    if not password:
        return masker(auth)
    values = [v for v in (os.environ.get(name) for name in SECRET_ENVVARS) if v]
    return Masker([*values, *auth.secret_values(), password], auth.secret_header_names())


def _app_output(app: App | None, mask: Masker, why: str) -> None:
    """The end of the started app's output on stderr (masked, control characters escaped)."""
    from vapi_dev.output.lines import printable

    text = app.output() if app is not None else ""
    if not text:
        return
    typer.echo(f"--- {why}: the app's output (last lines) ---", err=True)
    for line in text.splitlines():
        typer.echo("  " + printable(mask.text(line), None), err=True)


def _start(cmd: str | None, against: str, timeout: float, mask: Masker) -> App | None:
    from vapi_dev.output.lines import printable
    from vapi_dev.testing.start import StartError, start

    if cmd is None:
        return None
    try:
        return start(cmd, against, timeout)
    except StartError as exc:
        # it quotes the command, which may carry a secret: masked word by word too (``API_KEY=… npm start``)
        shown = " ".join(mask.text(word) for word in cmd.split(" "))
        report(printable(mask.text(exc.message.replace(cmd, shown)), None))
        for line in exc.output.splitlines():
            typer.echo("  " + printable(mask.text(line), None), err=True)
        raise typer.Exit(ExitStatus.RUNTIME) from None


def _write_junit(
    path: Path, files: list[FileCases], results: list[list[Outcome]], bad: list[BadFile], seconds: float, mask: Masker
) -> None:
    from vapi_dev.testing.junit import junit_xml  # xml.etree only when --junit is given

    try:
        path.write_bytes(junit_xml(files, results, bad, seconds, mask))
    except OSError as exc:
        fail(f"cannot write --junit {path} ({exc.strerror}).")


def _run_samples(opts: Options, ack_within: float, json_out: bool, junit: Path | None, app: App | None) -> int:
    import asyncio
    import json
    import time

    from vapi_dev.testing import conformance
    from vapi_dev.testing.report import case_record

    began = time.monotonic()
    fc, outcomes, verdicts = asyncio.run(conformance.run_samples(opts, ack_within))
    seconds = time.monotonic() - began
    line = conformance.summary(outcomes, verdicts)
    if json_out:
        for o, v in zip(outcomes, verdicts, strict=True):
            sys.stdout.write(json.dumps(case_record(o, opts.mask) | {"verdict": v}, ensure_ascii=False) + "\n")
        sys.stdout.write(json.dumps({"event": "summary", "conformance": line, "seconds": round(seconds, 3)}) + "\n")
    else:
        c = stdout_console()
        c.print(conformance.table(outcomes, verdicts, opts.mask))
        c.print(line, markup=False)
    if junit is not None:
        _write_junit(junit, [fc], [outcomes], [], seconds, opts.mask)
    failed = any(v in conformance.FAILING for v in verdicts)
    if failed:
        _app_output(app, opts.mask, "samples failed")
    return ExitStatus.RUNTIME if failed else ExitStatus.OK


def _report(json_out: bool, mask: Masker, total: int) -> TerminalReport | NdjsonReport:
    from vapi_dev.testing.report import NdjsonReport, TerminalReport

    return NdjsonReport(sys.stdout, mask) if json_out else TerminalReport(stdout_console(), mask, total)


def _update(files: list[FileCases], results: list[list[Outcome]], mask: Masker, bad: list[BadFile]) -> int:
    from vapi_dev.testing.load import BadFile, FixtureError
    from vapi_dev.testing.update import update_file

    updated = 0
    for fc, outcomes in zip(files, results, strict=True):
        try:
            updated += update_file(fc, outcomes, mask)
        except FixtureError as exc:
            bad.append(BadFile(fc.source, exc.message))
    return updated


def test(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(metavar="PATHS", help="Fixture files (export's, show --json's, a payload) or directories."),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            envvar="VAPI_DEV_AGAINST",
            metavar="URL",
            help="The app: a URL or port. With a path, every request goes there; without, to its recorded path.",
            show_default=False,
        ),
    ] = None,
    samples: Annotated[
        bool, typer.Option("--samples", help="A conformance run with a sample of every message type, as a table.")
    ] = False,
    snapshot: Annotated[
        bool, typer.Option("--snapshot", help="Also compare each reply with the one recorded in the fixture.")
    ] = False,
    update: Annotated[
        bool, typer.Option("--update", help="With --snapshot: rewrite the recorded replies with the new ones.")
    ] = False,
    ignore: Annotated[
        list[str] | None,
        typer.Option("--ignore", metavar="PATH", help="A JSON path --snapshot ignores (* and ** allowed); repeatable."),
    ] = None,
    no_default_ignore: Annotated[
        bool, typer.Option("--no-default-ignore", help="Compare ids and timestamps too (ignored by default).")
    ] = False,
    start: Annotated[
        str | None,
        typer.Option("--start", metavar="CMD", help="Start the app first (a shell command), stop it after."),
    ] = None,
    start_timeout: Annotated[
        float, typer.Option("--start-timeout", metavar="SECONDS", min=0.1, help="How long --start waits for the port.")
    ] = 30.0,
    junit: Annotated[Path | None, typer.Option("--junit", metavar="FILE", help="Write JUnit XML here.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="NDJSON records on stdout instead of the report.")] = False,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", metavar="N", min=1, help="Fixture files run at once (each in order).")
    ] = 1,
    deadline: Annotated[
        float | None,
        typer.Option(
            "--deadline",
            metavar="SECONDS",
            min=0.001,
            help="Every reply-needed type's deadline (your assistant's server.timeoutSeconds; default: the type's).",
            show_default=False,
        ),
    ] = None,
    ack_within: Annotated[
        float,
        typer.Option("--ack-within", metavar="SECONDS", min=0.001, help="--samples: an acknowledgement slower fails."),
    ] = 1.0,
    secret: SecretOpt = None,
    bearer: BearerOpt = None,
    hmac_secret: HmacOpt = None,
    secret_file: SecretFileOpt = None,
    bearer_file: BearerFileOpt = None,
    hmac_secret_file: HmacFileOpt = None,
    timeout: TimeoutOpt = 30.0,
) -> None:
    """Send recorded Vapi exchanges to your app and check every reply (contracts, deadlines, expectations,
    snapshots): exit 0 when all pass, 1 when one fails, 2 on bad input."""
    import asyncio
    import time

    from vapi_dev.resend import target_url
    from vapi_dev.testing.expect import DEFAULT_IGNORE
    from vapi_dev.testing.load import load_all
    from vapi_dev.testing.report import summarize
    from vapi_dev.testing.run import Options, run_files, unsendable_credential

    if against is None:
        fail("give the app to test with --against URL (or a port).", ExitStatus.USAGE)
    if update and not snapshot:
        fail("--update rewrites recorded replies, so it needs --snapshot.", ExitStatus.USAGE)
    if samples and (paths or snapshot):
        fail("--samples sends vapi-dev's own samples; give it no fixtures and no --snapshot.", ExitStatus.USAGE)
    if not samples and not paths:
        fail("give fixture files or directories to run (or --samples).", ExitStatus.USAGE)
    auth = auth_config(secret, bearer, hmac_secret, (secret_file, bearer_file, hmac_secret_file))
    unsendable = unsendable_credential(auth)
    if unsendable:
        fail(unsendable, ExitStatus.USAGE)
    target_url(against, "/", "")  # a bad --against is a usage error before anything runs
    mask = _masker(auth, against)
    ignored = (*(() if no_default_ignore else DEFAULT_IGNORE), *(ignore or []))
    opts = Options(against, auth, mask, timeout, deadline, snapshot, update, ignored, jobs)
    if samples:
        app = _start(start, against, start_timeout, mask)
        try:
            code = _run_samples(opts, ack_within, json_out, junit, app)
        finally:
            if app is not None:
                app.stop()
        raise typer.Exit(code)

    files, bad = load_all(paths or [], can_sign=auth.enabled)
    total = sum(len(fc.cases) for fc in files)
    report = _report(json_out, mask, total)
    for b in bad:
        report.bad_file(b)
    masked = sorted({name for fc in files for name in fc.masked})
    if masked:
        report.note(f"the fixtures keep {', '.join(masked)} masked; signing again with the credentials given.")
    app = _start(start, against, start_timeout, mask) if files else None
    began = time.monotonic()
    try:
        results = asyncio.run(run_files(files, opts, report.file_done)) if files else []
        if app is not None and app.exited() is not None:
            report.note(f"the app exited with status {app.exited()} during the run.")
        outcomes = [o for outs in results for o in outs]
        if any(not o.passed for o in outcomes):
            _app_output(app, mask, "tests failed")
    finally:
        if app is not None:
            app.stop()
    seconds = time.monotonic() - began
    known_bad = len(bad)
    updated = _update(files, results, mask, bad) if update else 0
    for b in bad[known_bad:]:
        report.bad_file(b)
    report.failures(outcomes)
    summary = summarize(outcomes, len(bad), updated, seconds)
    report.summary(summary)
    if junit is not None:
        _write_junit(junit, files, results, bad, seconds, mask)
    if summary.failed:
        raise typer.Exit(ExitStatus.RUNTIME)
    if bad:
        raise typer.Exit(ExitStatus.USAGE)
