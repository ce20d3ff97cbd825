"""Every protocol package's scenarios, under every version they apply to, through the one processing step.

A scenario's failure shows here as expected versus got, with the events that mattered; the same
run is ``trialguard protocol test``.
"""

from __future__ import annotations

import pytest

from events.scenarios import describe, run
from protocol.kit import kit_of
from protocol.registry import studies, versions_for

RUNS = [
    pytest.param(version.protocol, scenario, id=f"{study} v{version.name} {scenario.feature}: {scenario.name}")
    for study in studies()
    for version in versions_for(study).versions
    for scenario in kit_of(version.protocol).scenarios()
    if scenario.applies_to(version.name)
]


@pytest.mark.parametrize(("protocol", "scenario"), RUNS)
def test_scenario(protocol, scenario) -> None:  # type: ignore[no-untyped-def]
    outcome = run(scenario, protocol, kit_of(protocol).vocabulary)
    report = [
        f"{scenario.path}:{f.line}: {f.step}\n  expected: {f.expected}\n  got:      {f.got}" for f in outcome.failures
    ]
    report += [f"  event: {describe(e)}" for e in outcome.mattered]
    assert outcome.passed, "\n".join(report)
