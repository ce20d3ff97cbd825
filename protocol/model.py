"""The generic shape of a protocol as code. Nothing here knows a particular trial.

A protocol version is: its study arms, its named parameters (each with a source, and an
ASSUMPTION note where the registry record gives no number), its visit schedule, the order of its
treatment steps, the facts it derives from a participant's state, and its rules. A rule names its
stable id, the protocol section it enforces, its DVCAT category and ICH E3 severity, and a
condition over the facts, written in durable_rules' condition language (``m.sledai_2k < 8``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from contracts import Category, ParticipantEvent, Severity
from protocol.state import ParticipantState

Fact = bool | int | float | str | list[str]
Facts = dict[str, Fact]
"""What a protocol derives from a participant's state and a new event: flat, JSON-ready values
that rule conditions test and findings quote as evidence. An unknown fact is absent, never
None, so a condition on it does not hold."""

Derive = Callable[[ParticipantState, ParticipantEvent], Facts]


@dataclass(frozen=True)
class FactSource:
    """A protocol section's derivation of facts for the event types it reads.

    Attributes:
        on: the event types it has something to say about (None: every type).
        derive: the facts, given the state before the event; {} when there is nothing to say.
    """

    derive: Derive
    on: frozenset[str] | None = None


def facts_on(*event_types: str) -> Callable[[Derive], FactSource]:
    """Declare a fact derivation for some event types (none given: every type)."""

    def declare(derive: Derive) -> FactSource:
        return FactSource(derive, frozenset(event_types) if event_types else None)

    return declare


class Kind(StrEnum):
    DEVIATION = "deviation"
    ALERT = "alert"


class OncePer(StrEnum):
    """How often a rule raises: one finding per real-world problem, not one per event."""

    PARTICIPANT = "participant"
    TRIGGER = "trigger"
    KEY = "key"
    """Once per value of the fact the rule names as its ``key`` (a visit, a withdrawal)."""


@dataclass(frozen=True)
class Parameter:
    """A named number of the protocol, with where it comes from.

    Attributes:
        assumption: why this number was chosen, when the registry record does not state it.
    """

    name: str
    value: Any
    unit: str
    source: str
    assumption: str | None = None


@dataclass(frozen=True)
class Arm:
    """A study group and its target dose."""

    name: str
    target_cells_per_kg: float
    description: str


@dataclass(frozen=True)
class VisitWindow:
    """A follow-up visit: its nominal day after infusion and the allowed deviation in days."""

    code: str
    day: int
    window_days: int

    def allows(self, day: int) -> bool:
        """Whether a visit on ``day`` after infusion is inside the window (both ends included)."""
        return self.day - self.window_days <= day <= self.day + self.window_days

    def closes_after(self, infused_on: dt.date) -> dt.date:
        """The last day of the window."""
        return infused_on + dt.timedelta(days=self.day + self.window_days)


@dataclass(frozen=True)
class Step:
    """A treatment step of the lifecycle and the step it depends on."""

    event_type: str
    after: str


@dataclass(frozen=True)
class RuleSpec:
    """One rule of the catalogue.

    Attributes:
        rule_id: stable API: dashboards, exports and audits key on it.
        reference: the protocol section enforced, e.g. "Inclusion 9".
        when: the condition, a durable_rules expression over the facts.
        evidence: the facts a finding quotes.
        key: with ``OncePer.KEY``, the fact whose value makes a finding distinct.
        for_each: a list fact; one finding per item (the item is its key and evidence).
        item_name: the evidence name of that item.
    """

    rule_id: str
    kind: Kind
    term: str
    reference: str
    when: Any
    evidence: tuple[str, ...]
    once_per: OncePer
    category: Category | None = None
    severity: Severity | None = None
    key: str | None = None
    for_each: str | None = None
    item_name: str = "item"

    def __post_init__(self) -> None:
        if (self.kind is Kind.DEVIATION) != (self.category is not None and self.severity is not None):
            raise ValueError(f"{self.rule_id}: a deviation has a category and a severity, an alert has neither")
        if (self.once_per is OncePer.KEY) != (self.key is not None or self.for_each is not None):
            raise ValueError(f"{self.rule_id}: once per key needs a key or for_each fact, and only then")


def deviation(
    rule_id: str,
    *,
    category: Category,
    severity: Severity,
    reference: str,
    term: str,
    when: Any,
    evidence: tuple[str, ...],
    once_per: OncePer = OncePer.PARTICIPANT,
    key: str | None = None,
    for_each: str | None = None,
    item_name: str = "item",
) -> RuleSpec:
    """Declare a protocol-deviation rule."""
    return RuleSpec(
        rule_id, Kind.DEVIATION, term, reference, when, evidence, once_per, category, severity, key, for_each, item_name
    )


def alert(rule_id: str, *, reference: str, term: str, when: Any, evidence: tuple[str, ...]) -> RuleSpec:
    """Declare a safety-alert rule: raised once per triggering event."""
    return RuleSpec(rule_id, Kind.ALERT, term, reference, when, evidence, OncePer.TRIGGER)


@dataclass(frozen=True)
class Protocol:
    """One version of one trial's protocol."""

    study_id: str
    version: str
    title: str
    arms: tuple[Arm, ...]
    parameters: tuple[Parameter, ...]
    schedule: tuple[VisitWindow, ...]
    steps: tuple[Step, ...]
    fact_sources: tuple[FactSource, ...]
    rules: tuple[RuleSpec, ...]
    _by_id: Mapping[str, RuleSpec] = field(init=False, repr=False, compare=False)
    _sources_by_type: dict[str, tuple[Derive, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {r.rule_id: r for r in self.rules}
        if len(by_id) != len(self.rules):
            raise ValueError(f"{self.study_id} v{self.version}: duplicate rule ids")
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_sources_by_type", {})

    def rule(self, rule_id: str) -> RuleSpec:
        """The rule with this id."""
        return self._by_id[rule_id]

    def facts(self, state: ParticipantState, event: ParticipantEvent) -> Facts:
        """Every fact the protocol derives for ``event``, given the state before it."""
        facts: Facts = {"event_type": event.event_type}
        for derive in self._sources_for(event.event_type):
            facts.update(derive(state, event))
        return facts

    def _sources_for(self, event_type: str) -> tuple[Derive, ...]:
        sources = self._sources_by_type.get(event_type)
        if sources is None:
            sources = tuple(s.derive for s in self.fact_sources if s.on is None or event_type in s.on)
            self._sources_by_type[event_type] = sources
        return sources
