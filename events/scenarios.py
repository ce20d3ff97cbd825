"""Run scenario tests through the one processing step (``events.process``), as replay and the
live service do. Pure: a scenario's events in, its findings and verdict out."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from contracts import Finding, FindingSuperseded, ParticipantEvent
from events.decide import process
from protocol import ParticipantState, Protocol
from protocol.scenarios import Scenario, ScenarioError, Vocabulary
from protocol.scenarios.expect import Got, compare


@dataclass(frozen=True)
class Failure:
    """One expectation that did not hold."""

    line: int
    step: str
    expected: str
    got: str


@dataclass(frozen=True)
class Outcome:
    """A scenario run under one protocol version.

    Attributes:
        scenario: what was run.
        version: the protocol version it was judged under.
        findings: every finding, in order (FindingSuperseded left out).
        failures: the expectations that did not hold; none when it passed.
        mattered: the events that mattered: those the scenario changed or added to its base
            journey, and the triggers of its findings, in log order.
    """

    scenario: Scenario
    version: str
    findings: tuple[Finding, ...]
    failures: tuple[Failure, ...]
    mattered: tuple[ParticipantEvent, ...]

    @property
    def passed(self) -> bool:
        """Whether every expectation held."""
        return not self.failures


def build(scenario: Scenario, vocabulary: Vocabulary) -> tuple[list[ParticipantEvent], list[ParticipantEvent]]:
    """The scenario's events and its base journey's events.

    Raises:
        ScenarioError: a step whose values cannot make an event (its file and line).
    """
    base = vocabulary.journeys[scenario.journey]
    journey = base()
    for step in scenario.steps:
        try:
            step.apply(journey, **step.arguments)
        except (ValueError, KeyError, TypeError) as e:
            raise ScenarioError(scenario.path, step.line, f"{step.text!r}: {e}") from None
    try:
        return journey.events(), base().events()
    except ValueError as e:  # a contract violation: the event the steps made is not valid
        raise ScenarioError(scenario.path, scenario.line, f"the journey breaks the contract: {e}") from None


def run(scenario: Scenario, protocol: Protocol, vocabulary: Vocabulary) -> Outcome:
    """Judge the scenario's events under ``protocol`` and compare with what it expects.

    Raises:
        ScenarioError: see ``build``.
    """
    events, base = build(scenario, vocabulary)
    states: dict[str, ParticipantState] = {}
    findings: list[Finding] = []
    for event in events:
        state = states.get(event.participant_id) or ParticipantState(event.participant_id)
        step = process(state, event, protocol)
        states[event.participant_id] = step.state
        findings += [f for f in step.findings if not isinstance(f, FindingSuperseded)]
    failures = compare(scenario.expectations, [Got(f.rule_id, f.evidence) for f in findings])
    return Outcome(
        scenario,
        protocol.version,
        tuple(findings),
        tuple(Failure(e.line, e.text, expected, got) for e, expected, got in failures),
        tuple(_mattered(events, base, findings)) if failures else (),
    )


def _mattered(
    events: Sequence[ParticipantEvent], base: Sequence[ParticipantEvent], findings: Sequence[Finding]
) -> list[ParticipantEvent]:
    def key(e: ParticipantEvent) -> tuple[str, str, str]:
        return e.event_type, e.occurred_at.isoformat(), json.dumps(e.payload.model_dump(mode="json"), sort_keys=True)

    unchanged = Counter(key(e) for e in base)
    triggers = {i for f in findings for i in f.trigger_event_ids}
    shown = []
    for e in events:
        k = key(e)
        if unchanged[k]:
            unchanged[k] -= 1
            if e.event_id not in triggers:
                continue
        shown.append(e)
    return shown


def describe(event: ParticipantEvent) -> str:
    """One line for an event that mattered: time, type and payload."""
    payload = json.dumps(event.payload.model_dump(mode="json", exclude_none=True), sort_keys=True)
    return f"{event.occurred_at.isoformat()} {event.event_type} {payload}"
