"""JUnit XML of a scenario run, for CI systems (one testsuite per feature file)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from events.scenarios import Outcome, describe


def write_junit(outcomes: Sequence[Outcome], path: Path) -> None:
    """Write the outcomes as JUnit XML; ElementTree escapes every text and attribute."""
    root = ET.Element("testsuites", name="trialguard protocol test")
    suites: dict[str, ET.Element] = {}
    for outcome in outcomes:
        scenario = outcome.scenario
        suite = suites.get(scenario.path)
        if suite is None:
            suite = suites[scenario.path] = ET.SubElement(root, "testsuite", name=scenario.feature, file=scenario.path)
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"{scenario.feature} (v{outcome.version})",
            name=scenario.name,
            file=scenario.path,
            line=str(scenario.line),
        )
        if outcome.failures:
            failure = ET.SubElement(case, "failure", message=f"{len(outcome.failures)} expectation(s) did not hold")
            lines = [
                f"{scenario.path}:{f.line}: {f.step}\nexpected: {f.expected}\ngot: {f.got}" for f in outcome.failures
            ]
            failure.text = "\n".join([*lines, *(f"event: {describe(e)}" for e in outcome.mattered)])
    for suite in suites.values():
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    root.set("tests", str(len(outcomes)))
    root.set("failures", str(sum(1 for o in outcomes if o.failures)))
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
