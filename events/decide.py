"""decide: which findings an event raises under a protocol, and the processing step that folds
them in. Pure: no clock, no I/O; the same state and event always give the same outputs."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass

from contracts import DeviationRaised, Finding, ParticipantEvent, SafetyAlertRaised
from events.fold import fold
from protocol import Kind, OncePer, Protocol, RuleSpec
from protocol.state import ParticipantState

FINDING_NAMESPACE = uuid.UUID("5b0e6f4e-3a52-4a4e-9d8e-2f6c1d7a9b10")
"""uuid5 namespace of deviation and alert ids. Changing it changes every id: never do."""


def finding_id(study_id: str, participant_id: str, rule_id: str, trigger_event_ids: tuple[uuid.UUID, ...]) -> uuid.UUID:
    """The deterministic id of a finding: a retry or a replay yields the same id."""
    name = "|".join([study_id, participant_id, rule_id, *(str(i) for i in trigger_event_ids)])
    return uuid.uuid5(FINDING_NAMESPACE, name)


def once_key(rule: RuleSpec, event: ParticipantEvent) -> str:
    """What makes a finding the same real-world problem as one already raised."""
    return rule.rule_id if rule.once_per is OncePer.PARTICIPANT else f"{rule.rule_id}@{event.event_id}"


def decide(state: ParticipantState, event: ParticipantEvent, protocol: Protocol) -> list[Finding]:
    """The findings ``event`` raises, given the state before it. Rules run in catalogue order."""
    findings: list[Finding] = []
    for rule in protocol.rules:
        if once_key(rule, event) in state.raised:
            continue
        evidence = rule.check(state, event)
        if evidence is None:
            continue
        triggers = (event.event_id,)
        common = {
            "study_id": event.study_id,
            "site_id": event.site_id,
            "participant_id": event.participant_id,
            "rule_id": rule.rule_id,
            "protocol_version": protocol.version,
            "term": rule.term,
            "protocol_reference": rule.reference,
            "occurred_at": event.occurred_at,
            "trigger_event_ids": triggers,
            "evidence": evidence,
        }
        fid = finding_id(event.study_id, event.participant_id, rule.rule_id, triggers)
        if rule.kind is Kind.DEVIATION:
            findings.append(DeviationRaised(deviation_id=fid, category=rule.category, severity=rule.severity, **common))
        else:
            findings.append(SafetyAlertRaised(alert_id=fid, **common))
    return findings


@dataclass(frozen=True)
class Step:
    """The result of processing one event: the new state and the findings to publish."""

    state: ParticipantState
    findings: list[Finding]


def process(state: ParticipantState, event: ParticipantEvent, protocol: Protocol) -> Step:
    """Decide, then fold: the one processing step, for live service and replay alike.

    An event id seen before changes nothing (a retried publish is not a new fact).
    """
    if event.event_id in state.seen_event_ids:
        return Step(state, [])
    findings = decide(state, event, protocol)
    raised = {once_key(protocol.rule(f.rule_id), event) for f in findings}
    folded = fold(state, event)
    return Step(
        dataclasses.replace(
            folded, raised=folded.raised | raised, seen_event_ids=folded.seen_event_ids | {event.event_id}
        ),
        findings,
    )
