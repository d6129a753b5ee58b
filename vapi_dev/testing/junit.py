"""``--junit FILE``: the run as JUnit XML for CI (a testsuite per fixture file, a testcase per exchange).

A failure's ``message`` is its first reason and its text the whole explanation the terminal shows; a bad
fixture is a testsuite with one errored testcase. Masked and printable like the terminal output (XML
cannot carry control characters at all).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vapi_dev.output.lines import printable
from vapi_dev.testing.report import explain, plain

if TYPE_CHECKING:
    from vapi_dev.redact import Masker
    from vapi_dev.testing.load import BadFile, FileCases
    from vapi_dev.testing.run import Outcome


def _seconds(o: Outcome) -> str:
    return f"{(o.ms or 0.0) / 1000:.3f}"


def junit_xml(
    files: Sequence[FileCases],
    results: Sequence[Sequence[Outcome]],
    bad: Sequence[BadFile],
    seconds: float,
    mask: Masker,
) -> bytes:
    def safe(text: str) -> str:
        return printable(mask.text(text), None)

    root = ET.Element("testsuites", name="vapi-dev test", time=f"{seconds:.3f}")
    total = failures = 0
    for fc, outcomes in zip(files, results, strict=True):
        failed = sum(not o.passed for o in outcomes)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=safe(fc.source),
            tests=str(len(outcomes)),
            failures=str(failed),
            errors="0",
            skipped="0",
            time=f"{sum(float(_seconds(o)) for o in outcomes):.3f}",
        )
        total, failures = total + len(outcomes), failures + failed
        for o in outcomes:
            case = ET.SubElement(suite, "testcase", classname=safe(fc.source), name=safe(o.case.name), time=_seconds(o))
            if not o.passed:
                first = o.failures[0]
                el = ET.SubElement(case, "failure", message=safe(f"{first.what}: {first.message}"), type=first.what)
                el.text = plain(explain(o, mask))
            elif o.warnings:
                ET.SubElement(case, "system-out").text = "\n".join(safe(w) for w in o.warnings)
    for b in bad:
        suite = ET.SubElement(
            root, "testsuite", name=safe(b.source), tests="1", failures="0", errors="1", skipped="0", time="0"
        )
        case = ET.SubElement(suite, "testcase", classname=safe(b.source), name="load", time="0")
        ET.SubElement(case, "error", message=safe(b.message), type="bad-fixture").text = safe(b.message)
    root.set("tests", str(total + len(bad)))
    root.set("failures", str(failures))
    root.set("errors", str(len(bad)))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True)) + b"\n"
