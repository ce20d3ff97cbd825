"""The generic shape of a protocol as code. Nothing here knows a particular trial.

A protocol version is: its study arms, its named parameters (each with a source, and an
ASSUMPTION note where the registry record gives no number), its visit schedule, the order of its
treatment steps, the facts it derives from a participant's state, and its rules. A rule names its
stable id, the protocol section it enforces, its DVCAT category and ICH E3 severity, a
condition over the facts, written in durable_rules' condition language (``m.sledai_2k < 8``), and
the parameters its decision depends on (``Protocol.parameters_of`` gives them with their notes).
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from contracts import Category, ParticipantEvent, Severity
from protocol.state import ParticipantState

Fact = bool | int | float | str | list[str]
Facts = dict[str, Fact]
"""What a protocol derives from a participant's state and a new event: flat, JSON-ready values
that rule conditions test and findings quote as evidence. An unknown fact is absent, never
None, so a condition on it does not hold."""

Derive = Callable[[ParticipantState, ParticipantEvent], Facts]

T = TypeVar("T")


@dataclass(frozen=True)
class FactSource:
    """A protocol section's derivation of facts for the event types it reads, in one version.

    Attributes:
        derive: the facts, given the state before the event; {} when there is nothing to say.
        on: the event types it has something to say about (None: every type).
        function: the function as its section declares it (``FactDerivation``), which ``derive``
            calls with the version's terms; None when ``derive`` is that function itself.
    """

    derive: Derive
    on: frozenset[str] | None = None
    function: Callable[..., Facts] | None = None

    @property
    def declared(self) -> Callable[..., Facts]:
        """The function as written in its module (its name, module and docstring identify it)."""
        return self.function if self.function is not None else self.derive

    @property
    def name(self) -> str:
        """``module.qualname`` of the declared function."""
        return f"{self.declared.__module__}.{self.declared.__qualname__}"


@dataclass(frozen=True)
class FactDerivation(Generic[T]):
    """A section's derivation of facts as declared: a function of one version's terms (the values
    it decides with, of a type its package defines), the state before the event and the event.

    Bound to a version's terms when the version is built (``bound``), so two versions of a
    protocol derive their facts each with its own values, side by side, with nothing shared.
    """

    function: Callable[[T, ParticipantState, ParticipantEvent], Facts]
    on: frozenset[str] | None = None

    def bound(self, terms: T) -> FactSource:
        """The derivation with ``terms`` given: what a version's ``fact_sources`` holds."""
        return FactSource(functools.partial(self.function, terms), self.on, self.function)


def facts_on(
    *event_types: str,
) -> Callable[[Callable[[T, ParticipantState, ParticipantEvent], Facts]], FactDerivation[T]]:
    """Declare a fact derivation for some event types (none given: every type).

    The function takes the version's terms first: the values it derives with come from the
    version being decided, never from a module constant.
    """

    def declare(function: Callable[[T, ParticipantState, ParticipantEvent], Facts]) -> FactDerivation[T]:
        return FactDerivation(function, frozenset(event_types) if event_types else None)

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
    """A study group and its target dose: cells per kg of body weight, or a fixed number of cells.

    Attributes:
        name: the arm's identifier, as ``ParticipantEnrolled.arm`` names it.
        target_cells_per_kg: the dose per kg; None when the dose is fixed or not known.
        description: the record's words.
        target_total_cells: a fixed dose (cells per infusion, whatever the weight); None when
            the dose is per kg or not known. At most one of the two targets is set; neither when
            the record gives no dose (then no dose rule can be configured).
    """

    name: str
    target_cells_per_kg: float | None
    description: str
    target_total_cells: float | None = None

    def __post_init__(self) -> None:
        if self.target_cells_per_kg is not None and self.target_total_cells is not None:
            raise ValueError(f"arm {self.name}: a dose is per kg or fixed, not both")

    def dose_ratio(self, total_cells: float, weight_kg: float) -> float | None:
        """The infused dose as a fraction of this arm's target (None when the arm has no target)."""
        if self.target_total_cells is not None:
            return total_cells / self.target_total_cells
        if self.target_cells_per_kg is not None:
            return total_cells / weight_kg / self.target_cells_per_kg
        return None


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
        parameters: the ``Parameter.name`` of every protocol parameter the rule's decision depends
            on: the thresholds its condition compares with and those its facts are derived with
            (a screening window, a rounding), in that order. Empty when it uses none.
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
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.kind is Kind.DEVIATION) != (self.category is not None and self.severity is not None):
            raise ValueError(f"{self.rule_id}: a deviation has a category and a severity, an alert has neither")
        if (self.once_per is OncePer.KEY) != (self.key is not None or self.for_each is not None):
            raise ValueError(f"{self.rule_id}: once per key needs a key or for_each fact, and only then")
        if len(set(self.parameters)) != len(self.parameters):
            raise ValueError(f"{self.rule_id}: a parameter is named twice")


def parameter_names(parameters: Iterable[Parameter | str]) -> tuple[str, ...]:
    """The names of parameters given as ``Parameter`` objects or by name, in order."""
    return tuple(p if isinstance(p, str) else p.name for p in parameters)


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
    parameters: Iterable[Parameter | str] = (),
) -> RuleSpec:
    """Declare a protocol-deviation rule.

    Args:
        parameters: the protocol parameters its decision depends on (see ``RuleSpec.parameters``),
            as ``Parameter`` objects or names.
    """
    return RuleSpec(
        rule_id,
        Kind.DEVIATION,
        term,
        reference,
        when,
        evidence,
        once_per,
        category,
        severity,
        key,
        for_each,
        item_name,
        parameter_names(parameters),
    )


def alert(
    rule_id: str,
    *,
    reference: str,
    term: str,
    when: Any,
    evidence: tuple[str, ...],
    parameters: Iterable[Parameter | str] = (),
) -> RuleSpec:
    """Declare a safety-alert rule: raised once per triggering event.

    Args:
        parameters: the protocol parameters its decision depends on (see ``RuleSpec.parameters``),
            as ``Parameter`` objects or names.
    """
    return RuleSpec(
        rule_id, Kind.ALERT, term, reference, when, evidence, OncePer.TRIGGER, parameters=parameter_names(parameters)
    )


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
    rebuild: Callable[[str, tuple[Parameter, ...]], Protocol] | None = field(default=None, compare=False, repr=False)
    """The builder that made this version (its package's ``build``): given a version name and
    parameters, the same protocol with those values compiled into its rule conditions and bound
    to its fact derivations. ``protocol.versions.amended`` uses it; None for a protocol written
    by hand, whose parameters then cannot be amended."""
    _by_id: Mapping[str, RuleSpec] = field(init=False, repr=False, compare=False)
    _parameters_by_name: Mapping[str, Parameter] = field(init=False, repr=False, compare=False)
    _sources_by_type: dict[str, tuple[Derive, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id = {r.rule_id: r for r in self.rules}
        if len(by_id) != len(self.rules):
            raise ValueError(f"{self.study_id} v{self.version}: duplicate rule ids")
        parameters = {p.name: p for p in self.parameters}
        if len(parameters) != len(self.parameters):
            raise ValueError(f"{self.study_id} v{self.version}: duplicate parameter names")
        for rule in self.rules:
            if unknown := [name for name in rule.parameters if name not in parameters]:
                raise ValueError(f"{self.study_id} v{self.version}: {rule.rule_id} names unknown parameters {unknown}")
        object.__setattr__(self, "_by_id", by_id)
        object.__setattr__(self, "_parameters_by_name", parameters)
        object.__setattr__(self, "_sources_by_type", {})

    def rule(self, rule_id: str) -> RuleSpec:
        """The rule with this id."""
        return self._by_id[rule_id]

    def parameter(self, name: str) -> Parameter:
        """The parameter with this name.

        Raises:
            KeyError: the protocol has no parameter of that name.
        """
        return self._parameters_by_name[name]

    def parameters_of(self, rule_id: str) -> tuple[Parameter, ...]:
        """The parameters a rule's decision depends on, in the order the rule names them.

        Each carries its value, unit, source and ASSUMPTION note, for showing beside a finding.

        Args:
            rule_id: a rule of this protocol.

        Returns:
            The rule's parameters; empty when it uses none.

        Raises:
            KeyError: the protocol has no rule of that id.
        """
        return tuple(self._parameters_by_name[name] for name in self.rule(rule_id).parameters)

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
