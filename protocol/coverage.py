"""Coverage a reviewer can check: what ``trialguard protocol check`` refuses.

For every version of a study: each rule has a scenario that expects it raised and a boundary
scenario (tagged ``@boundary``) that expects it not raised - the value just inside its limit;
each parameter has a source or an ASSUMPTION note; each criterion of the registry record is
encoded by rules of the version or listed as not encoded with its reason; and each rule that
enforces an inclusion or exclusion criterion names one the record lists.

Static: it reads the declarations; ``trialguard protocol test`` proves the scenarios pass.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from protocol.criteria import Criterion
from protocol.model import Protocol
from protocol.scenarios import Scenario

_CRITERION = re.compile(r"^(Inclusion|Exclusion) \d+")


def gaps(protocol: Protocol, scenarios: Sequence[Scenario], criteria: Sequence[Criterion]) -> list[str]:
    """What a version lacks, one readable line each; empty when its coverage is complete."""
    name = f"{protocol.study_id} v{protocol.version}"
    found: list[str] = []
    applying = [s for s in scenarios if s.applies_to(protocol.version)]
    for rule in protocol.rules:
        if not any(rule.rule_id in s.raises() or _in_exact(rule.rule_id, s) for s in applying):
            found.append(f"{name}: rule {rule.rule_id} has no scenario that raises it")
        if not any(s.boundary and rule.rule_id in s.proves_not_raised() for s in applying):
            found.append(
                f"{name}: rule {rule.rule_id} has no @boundary scenario that does not raise it (the value just inside)"
            )
    for parameter in protocol.parameters:
        if not parameter.source.strip() and not (parameter.assumption or "").strip():
            found.append(f"{name}: parameter {parameter.name} has neither a source nor an ASSUMPTION note")
    rule_ids = {r.rule_id for r in protocol.rules}
    references = {c.reference for c in criteria}
    for criterion in criteria:
        if unknown := [r for r in criterion.rules if r not in rule_ids]:
            found.append(
                f"{name}: {criterion.reference} is said to be encoded by {', '.join(unknown)}, not rules of it"
            )
    for rule in protocol.rules:
        match = _CRITERION.match(rule.reference)
        if match and not any(r == match[0] or r.startswith(f"{match[0]}.") for r in references):
            found.append(f"{name}: rule {rule.rule_id} enforces {match[0]}, which the criteria list does not name")
    if not criteria:
        found.append(f"{name}: the registry record's criteria are not listed (kit.criteria.CRITERIA)")
    return found


def _in_exact(rule_id: str, scenario: Scenario) -> bool:
    return any(rule_id in e.rules for e in scenario.expectations)
