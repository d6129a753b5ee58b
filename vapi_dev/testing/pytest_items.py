"""The test items of the pytest plugin: one per fixture exchange (``call.json::1-tool-calls``), run by the
same engine as `vapi-dev test` and explained the same way when they fail; a bad fixture is one failing item."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from vapi_dev.errors import VapiDevError
from vapi_dev.resend import target_url
from vapi_dev.testing.expect import DEFAULT_IGNORE
from vapi_dev.testing.load import Case, check_signing, find, load
from vapi_dev.testing.report import explain, plain
from vapi_dev.testing.run import Options, Outcome, run_case, unsendable_credential

if TYPE_CHECKING:
    from _pytest._code.code import ExceptionInfo, TerminalRepr

SECRET_ENVVARS = ("VAPI_DEV_SECRET", "VAPI_DEV_BEARER", "VAPI_DEV_HMAC_SECRET")


class VapiFailure(Exception):
    """A failed case (its explanation) or a bad fixture (its message)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def options(config: pytest.Config) -> Options:
    from vapi_dev.redact import Masker
    from vapi_dev.vapi.auth import AuthConfig

    secret, bearer, hmac_secret = (os.environ.get(n) or None for n in SECRET_ENVVARS)
    auth = AuthConfig(secret=secret, bearer=bearer, hmac_secret=hmac_secret)
    auth.validate()
    unsendable = unsendable_credential(auth, SECRET_ENVVARS[:2])
    if unsendable:
        raise VapiDevError(unsendable)
    target_url(config.getoption("vapi_against"), "/", "")  # BadTarget: said once, before any item runs
    ignore = (*DEFAULT_IGNORE, *config.getoption("vapi_ignore"))
    return Options(
        against=config.getoption("vapi_against"),
        auth=auth,
        mask=Masker(auth.secret_values(), auth.secret_header_names()),
        timeout=config.getoption("vapi_timeout"),
        deadline_s=config.getoption("vapi_deadline"),
        snapshot=config.getoption("vapi_snapshot"),
        ignore=ignore,
    )


class VapiFile(pytest.File):
    """A fixture file: an item per exchange, or one failing ``load`` item saying why it cannot run (a bad file
    fails as a test, so the other files still run; a collection error would stop the whole session)."""

    opts: Options
    error: str = ""

    def collect(self) -> list[pytest.Item]:
        if self.error:
            return [VapiItem.from_parent(self, name="load", case=None, opts=self.opts, error=self.error)]
        try:
            fc = load(self.path, self.source)
            check_signing(fc, self.opts.auth.enabled)
        except VapiDevError as exc:
            return [VapiItem.from_parent(self, name="load", case=None, opts=self.opts, error=exc.message)]
        return [
            VapiItem.from_parent(self, name=f"{c.index}-{c.request.label or c.request.method}", case=c, opts=self.opts)
            for c in fc.cases
        ]

    @property
    def source(self) -> str:
        return str(self.path)


class VapiItem(pytest.Item):
    def __init__(self, *, case: Case | None, opts: Options, error: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.case, self.opts, self.error = case, opts, error

    def runtest(self) -> None:
        if self.case is None:
            raise VapiFailure(self.error)
        outcome: Outcome = asyncio.run(run_case(self.case, self.opts))
        if not outcome.passed:
            raise VapiFailure(plain(explain(outcome, self.opts.mask)))
        for w in outcome.warnings:
            self.add_report_section("call", "vapi-dev warnings", w)

    def repr_failure(self, excinfo: ExceptionInfo[BaseException], style: Any = None) -> str | TerminalRepr:
        if isinstance(excinfo.value, VapiFailure):
            return excinfo.value.text
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"vapi-dev: {self.name}"


def collect(session: pytest.Session, config: pytest.Config) -> list[pytest.Item]:
    """An item per exchange of every fixture under --vapi-fixtures, in file and recorded order, collected
    through the session (so pytest counts and reports them like its own)."""
    opts = options(config)
    files, bad = find([Path(p) for p in config.getoption("vapi_fixtures")])
    nodes: list[VapiFile] = []
    for path, error in [*((f, "") for f in files), *((Path(b.source), b.message) for b in bad)]:
        node = VapiFile.from_parent(session, path=path.resolve())
        node.opts, node.error = opts, error
        nodes.append(node)
    return [item for node in nodes for item in session.genitems(node)]
