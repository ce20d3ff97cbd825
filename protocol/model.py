"""The generic shape of a protocol as code: rule specs, each naming its clause, and the protocol
version that holds them. Nothing here knows a particular trial."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from contracts import Category, ParticipantEvent, Severity
from protocol.state import ParticipantState

Evidence = dict[str, Any]
"""The values a rule saw, as JSON-ready primitives."""

Check = Callable[[ParticipantState, ParticipantEvent], Evidence | None]
"""A rule's test: given what the log held before ``event`` and ``event`` itself, the evidence of
a finding, or None."""


class Kind(StrEnum):
    DEVIATION = "deviation"
    ALERT = "alert"


class OncePer(StrEnum):
    """How often a rule raises: one finding per real-world problem, not one per event."""

    PARTICIPANT = "participant"
    TRIGGER = "trigger"


@dataclass(frozen=True)
class RuleSpec:
    """One rule of the catalogue: its stable id, what it enforces, and how it is tested."""

    rule_id: str
    kind: Kind
    term: str
    reference: str
    check: Check
    once_per: OncePer
    category: Category | None = None
    severity: Severity | None = None

    def __post_init__(self) -> None:
        if (self.kind is Kind.DEVIATION) != (self.category is not None and self.severity is not None):
            raise ValueError(f"{self.rule_id}: a deviation has a category and a severity, an alert has neither")


def deviation(
    rule_id: str,
    check: Check,
    *,
    category: Category,
    severity: Severity,
    term: str,
    reference: str,
    once_per: OncePer,
) -> RuleSpec:
    """Declare a protocol-deviation rule."""
    return RuleSpec(rule_id, Kind.DEVIATION, term, reference, check, once_per, category, severity)


@dataclass(frozen=True)
class Protocol:
    """One version of one trial's protocol."""

    study_id: str
    version: str
    title: str
    rules: tuple[RuleSpec, ...]

    def __post_init__(self) -> None:
        ids = [r.rule_id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"{self.study_id} v{self.version}: duplicate rule ids")

    def rule(self, rule_id: str) -> RuleSpec:
        """The rule with this id."""
        return next(r for r in self.rules if r.rule_id == rule_id)
