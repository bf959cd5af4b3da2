"""JUnit XML for CI systems (GitHub Actions, GitLab, Jenkins render it as a test list).

Why JUnit: every CI system understands it, so each (method, dataset, metric) comparison shows
up as its own named test and a regression is visible without reading logs. Written with the
standard library's ElementTree, so the output is always well-formed XML.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..files import atomic_write_bytes

if TYPE_CHECKING:
    from .compare import CheckResult

SUITE = "rsr-bench check"


@dataclass(frozen=True)
class TestCase:
    """One JUnit testcase. ``failure`` = assertion failed (a regression); ``error`` = could not run."""

    __test__ = False  # not a pytest class

    classname: str
    name: str
    failure: str | None = None
    error: str | None = None
    output: str = ""
    time: float = 0.0


def to_xml(suite: str, cases: Sequence[TestCase], properties: Mapping[str, str] | None = None) -> bytes:
    """A ``<testsuites>`` document with one ``<testsuite>`` holding ``cases``."""
    failures = sum(c.failure is not None for c in cases)
    errors = sum(c.error is not None and c.failure is None for c in cases)
    total_time = sum(c.time for c in cases)
    root = ET.Element("testsuites", name=suite, tests=str(len(cases)), failures=str(failures),
                      errors=str(errors), time=f"{total_time:.3f}")
    ts = ET.SubElement(root, "testsuite", name=suite, tests=str(len(cases)), failures=str(failures),
                       errors=str(errors), skipped="0", time=f"{total_time:.3f}")
    if properties:
        props = ET.SubElement(ts, "properties")
        for k, v in properties.items():
            ET.SubElement(props, "property", name=str(k), value=str(v))
    for c in cases:
        tc = ET.SubElement(ts, "testcase", classname=c.classname, name=c.name, time=f"{c.time:.3f}")
        if c.failure is not None:
            el = ET.SubElement(tc, "failure", message=_first_line(c.failure), type="regression")
            el.text = c.failure
        elif c.error is not None:
            el = ET.SubElement(tc, "error", message=_first_line(c.error), type="setup")
            el.text = c.error
        if c.output:
            ET.SubElement(tc, "system-out").text = c.output
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write(path: str | os.PathLike, suite: str, cases: Sequence[TestCase], properties: Mapping[str, str] | None = None) -> None:
    atomic_write_bytes(path, to_xml(suite, cases, properties))


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line[:500]


def check_cases(result: CheckResult) -> list[TestCase]:
    """One testcase per comparison of a check (and one error case per setup problem)."""
    from .compare import fmt_value

    cases = [TestCase("setup", f"problem {i + 1}", error=p) for i, p in enumerate(result.problems)]
    for c in result.comparisons:
        detail = (f"baseline {fmt_value(c.baseline)} (n={c.n_baseline}), measured {fmt_value(c.measured)} "
                  f"(n={c.n_measured}), delta {'—' if c.delta is None else f'{c.delta:+.6g}'}, tolerance {c.tolerance}")
        cases.append(TestCase(classname=f"{c.method}/{c.dataset}", name=c.metric,
                              failure=None if c.passed else c.message or c.status,
                              output=c.message if c.metric == "fingerprint" else detail))
    return cases


def write_check(path: str | os.PathLike, result: CheckResult) -> None:
    """The JUnit XML of a check: one testcase per comparison, provenance as properties."""
    props = {"baseline": str(result.baseline.path or ""), "exit_code": str(result.exit_code)}
    props.update({k: str(v) for k, v in result.baseline.provenance.items() if k in ("device", "precision", "rsr_bench")})
    write(path, SUITE, check_cases(result), props)


def write_setup_error(path: str | os.PathLike, message: str) -> None:
    """The JUnit XML of a check that could not run at all (exit 2)."""
    write(path, SUITE, [TestCase("setup", "check", error=message)], {"exit_code": "2"})
