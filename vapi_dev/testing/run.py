"""Running cases: each file's exchanges sent in their recorded order over one shared aiohttp session, and
every reply judged (reply contracts and deadlines as listen checks them, the fixture's expectations, the
snapshot)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vapi_dev.resend import Reply, SendError, exchange_of, send_async, target_url
from vapi_dev.testing.expect import DEFAULT_IGNORE, Failure, check_expect, compare_snapshot

if TYPE_CHECKING:
    import aiohttp

    from vapi_dev.exchange import Exchange
    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import Case, FileCases
    from vapi_dev.vapi.auth import AuthConfig

HINT = " — is the app running? (--start CMD starts it first)"
# A reply larger than this fails its case unread: the checks parse, mask and diff it several times over, so an
# app that streams without end (or a small gzip that unpacks to gigabytes) must not cost all of memory.
MAX_REPLY_BYTES = 32_000_000
# Problems about the status that an expected status (``"expect": {"status": 401}``) decides instead.
_STATUS_CODES = (".http-status", ".rejected")


def unsendable_credential(auth: AuthConfig, names: tuple[str, str] = ("--secret", "--bearer")) -> str | None:
    """Why a credential cannot be sent (a line break or NUL in it: no header can carry it), or None; ``names``
    are what the user gave them as (options, or environment variables)."""
    for name, value in zip(names, (auth.secret, auth.bearer), strict=True):
        if value and any(c in value for c in "\r\n\x00"):
            return f"{name} has a control character (a line break?), which no header can carry; give it without."
    return None


@dataclass(frozen=True)
class Options:
    against: str  # a URL or port; with a path, every request goes there, else to its recorded path
    auth: AuthConfig
    mask: Masker
    timeout: float = 30.0  # seconds to wait for one reply
    deadline_s: float | None = None  # overrides each type's deadline (the assistant's server.timeoutSeconds)
    snapshot: bool = False
    update: bool = False
    ignore: tuple[str, ...] = DEFAULT_IGNORE
    jobs: int = 1  # files run at the same time (each file's exchanges always in order)
    max_reply_bytes: int = MAX_REPLY_BYTES


@dataclass
class Outcome:
    """What happened to one case: the failures (none: passed), warnings, and the exchange when it was sent."""

    case: Case
    url: str
    failures: list[Failure] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exchange: Exchange | None = None
    snapshot_changed: bool = False  # with --update: the reply differs from the recorded one (rewritten)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def ms(self) -> float | None:
        return None if self.exchange is None else self.exchange.duration_ms


def judge(case: Case, url: str, reply: Reply, opts: Options) -> Outcome:
    """The verdict on ``reply`` to ``case``: contracts, deadline, status, expectations, snapshot."""
    from vapi_dev.vapi.contracts import check_reply

    mask = opts.mask
    ex = exchange_of(case.request, url, reply, opts.deadline_s)
    ex.problems = check_reply(ex)
    out = Outcome(case, url, exchange=ex)
    exp = case.expect
    status_expected = exp is not None and exp.status is not None
    status_said = False
    for p in ex.problems:
        about_status = p.code.endswith(_STATUS_CODES)
        if about_status and status_expected:
            continue
        text = f"{mask.text(p.message)} [{p.code}]"
        if p.level == "error" or about_status:  # a rejected informational event fails a test, as in trigger
            out.failures.append(Failure("deadline" if p.code == "deadline.missed" else "contract", text))
            status_said = status_said or about_status
        else:
            out.warnings.append(text)
    if not status_expected and not status_said and not 200 <= reply.status < 300:
        out.failures.append(Failure("status", f"the app answered {reply.status}, not 2xx"))
    try:
        _expectations(case, reply, opts, out)
    except RecursionError:  # JSON nested deeper than the comparisons walk: parsed, but not comparable
        out.failures.append(Failure("json", "the reply is JSON nested too deeply to compare with the fixture"))
    return out


def _expectations(case: Case, reply: Reply, opts: Options, out: Outcome) -> None:
    """The fixture's expectations and the snapshot, added to ``out``."""
    exp, mask = case.expect, opts.mask
    if exp is not None:
        out.failures += check_expect(exp, reply.status, reply.headers, reply.body, reply.ms, mask)
    if opts.snapshot:
        rec = case.recorded
        if rec is None or rec.status is None:
            if not opts.update:
                why = "an error" if rec is not None and rec.error else "no reply"
                out.failures.append(
                    Failure("snapshot", f"the fixture recorded {why} to compare with; --update records this one")
                )
            out.snapshot_changed = opts.update
        else:
            diffs = compare_snapshot(rec.status, rec.body, reply.status, reply.body, opts.ignore, mask)
            if opts.update:
                out.snapshot_changed = bool(diffs)
            else:
                out.failures += diffs


async def run_case(case: Case, opts: Options, session: aiohttp.ClientSession | None = None) -> Outcome:
    """Send one case (re-signed) and judge its reply; a request that gets no reply is a failure."""
    url = target_url(opts.against, case.request.path, case.request.query)
    try:
        reply = await send_async(
            case.request,
            url,
            opts.auth,
            opts.timeout,
            HINT,
            session=session,
            mask=opts.mask,
            max_bytes=opts.max_reply_bytes,
        )
    except SendError as exc:
        return Outcome(case, url, [Failure("send", exc.message)])
    return judge(case, url, reply, opts)


async def run_files(
    files: Sequence[FileCases], opts: Options, on_file: Callable[[FileCases, list[Outcome]], None] | None = None
) -> list[list[Outcome]]:
    """Every file's outcomes (in the files' order); ``on_file`` hears of each file as it finishes."""
    import aiohttp

    sem = asyncio.Semaphore(max(1, opts.jobs))
    results: list[list[Outcome]] = [[] for _ in files]
    connector = aiohttp.TCPConnector(limit=max(1, opts.jobs) * 2, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, fc: FileCases) -> None:
            async with sem:
                for case in fc.cases:  # a call's exchanges in the order they were recorded
                    results[i].append(await run_case(case, opts, session))
            if on_file is not None:
                on_file(fc, results[i])

        await asyncio.gather(*(one(i, fc) for i, fc in enumerate(files)))
    return results
