"""decide: which findings an event raises under a protocol, and the processing step that folds
them in. Pure: no clock, no I/O; the same state and event always give the same outputs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from contracts import DeviationRaised, Finding, FindingSuperseded, Output, ParticipantEvent, SafetyAlertRaised
from contracts.participant_events import LabResultCorrected, LabResultRetracted, ParticipantEnrolled
from events.arms import check_arm
from events.bounds import MAX_KEPT_FACTS, check_bound
from events.corrections import check_correction
from events.fold import corrected_labs, fold
from events.sites import check_site
from events.snapshots import pack, unpack
from protocol import Facts, Kind, OncePer, Protocol, RuleSpec
from protocol.engine import engine_for
from protocol.fingerprint import fingerprint
from protocol.state import KeptFinding, ParticipantState, SeenIds, evolve
from protocol.versions import Judge, version_in_force

MAX_SEEN_EVENT_IDS = 10_000
"""Event ids remembered per participant for de-duplication. A participant's whole trial is a few
hundred events; the bound only keeps a runaway producer from growing a state without limit (an
event older than the last 10,000 of its participant would count as new)."""

FINDING_NAMESPACE = uuid.UUID("5b0e6f4e-3a52-4a4e-9d8e-2f6c1d7a9b10")
"""uuid5 namespace of deviation and alert ids. Changing it changes every id: never do."""


def finding_id(
    study_id: str, participant_id: str, rule_id: str, trigger_event_ids: tuple[uuid.UUID, ...], item: str | None = None
) -> uuid.UUID:
    """The deterministic id of a finding: a retry or a replay yields the same id.

    ``item`` tells apart the findings one trigger raises for several items (missed visits).
    """
    parts = [study_id, participant_id, rule_id, *(str(i) for i in trigger_event_ids)]
    return uuid.uuid5(FINDING_NAMESPACE, "|".join(parts if item is None else [*parts, item]))


def _once_keys(rule: RuleSpec, event: ParticipantEvent, facts: Facts) -> list[tuple[str, str | None]]:
    """(once-key, item) of each finding the rule raises: the key says which problem it is."""
    if rule.once_per is OncePer.PARTICIPANT:
        return [(rule.rule_id, None)]
    if rule.once_per is OncePer.TRIGGER:
        return [(f"{rule.rule_id}@{event.event_id}", None)]
    if rule.for_each is not None:
        items = facts[rule.for_each]
        assert isinstance(items, list)
        return [(f"{rule.rule_id}@{item}", item) for item in items]
    assert rule.key is not None
    return [(f"{rule.rule_id}@{facts[rule.key]}", None)]


def decide(state: ParticipantState, event: ParticipantEvent, judge: Judge) -> list[Finding]:
    """The findings ``event`` raises, given the state before it. Rules run in catalogue order.

    Args:
        judge: a protocol version, or a history: then the version in force at the event's
            ``occurred_at`` (its local date) and site decides it.
    """
    return [finding for finding, _ in _decide(state, event, version_in_force(judge, event.occurred_at, event.site_id))]


def _decide(
    state: ParticipantState,
    event: ParticipantEvent,
    protocol: Protocol,
    triggers: tuple[uuid.UUID, ...] | None = None,
) -> list[tuple[Finding, str]]:
    """(finding, once-key) of each finding; ``triggers`` (default: the event's id) name them."""
    facts = protocol.facts(state, event)
    if len(facts) == 1:
        return []  # nothing but the event type: no rule can hold
    findings: list[tuple[Finding, str]] = []
    triggers = triggers or (event.event_id,)
    for rule in engine_for(protocol).matching(facts):
        evidence = {name: facts[name] for name in rule.evidence if name in facts}
        for once_key, item in _once_keys(rule, event, facts):
            if once_key in state.raised:
                continue
            common = {
                "study_id": event.study_id,
                "site_id": event.site_id,
                "participant_id": event.participant_id,
                "rule_id": rule.rule_id,
                "protocol_version": protocol.version,
                "ruleset_fingerprint": fingerprint(protocol),
                "term": rule.term,
                "protocol_reference": rule.reference,
                "occurred_at": event.occurred_at,
                "trigger_event_ids": triggers,
                "evidence": evidence if item is None else {rule.item_name: item, **evidence},
            }
            fid = finding_id(event.study_id, event.participant_id, rule.rule_id, triggers, item)
            if rule.kind is Kind.DEVIATION:
                finding: Finding = DeviationRaised(
                    deviation_id=fid, category=rule.category, severity=rule.severity, **common
                )
            else:
                finding = SafetyAlertRaised(alert_id=fid, **common)
            findings.append((finding, once_key))
    return findings


@dataclass(frozen=True)
class Step:
    """The result of processing one event: the new state and the outputs to publish (findings,
    and FindingSuperseded when a correction means a finding no longer holds)."""

    state: ParticipantState
    findings: list[Output]
    duplicate: bool = False
    """The event's id was seen before: nothing changed."""
    unmatched: bool = False
    """A lab correction or retraction that names no result kept for the participant: it changed
    nothing but its seen id, and is to be reported (``events.corrections``)."""


def _id_of(finding: Finding) -> uuid.UUID:
    return finding.deviation_id if isinstance(finding, DeviationRaised) else finding.alert_id


def _redecide(
    state: ParticipantState, event: LabResultCorrected | LabResultRetracted, judge: Judge
) -> tuple[ParticipantState, list[Output]]:
    """A correction or retraction after enrollment of a lab the enrollment was decided on.

    The enrollment is decided again, under the version in force at its time and site, from the
    state kept before it with the lab replaced. A finding raised then that no longer holds is
    superseded (FindingSuperseded); a finding that holds now and was not raised is raised, its
    id and triggers naming the enrollment and the correction (a replay gives the same id). What was
    published is never edited. Returns the state (screening and findings in force updated) and
    the outputs; the state unchanged and nothing when the correction names no kept result.
    """
    packed, enrollment = state.screening, state.enrollment
    if packed is None or not isinstance(enrollment, ParticipantEnrolled):
        return state, []
    kept = unpack(packed)
    labs = corrected_labs(kept.labs, event)
    if labs is None:
        return state, []
    screening = evolve(kept, labs=labs)
    protocol = version_in_force(judge, enrollment.occurred_at, enrollment.site_id)
    now = _decide(screening, enrollment, protocol, (enrollment.event_id, event.event_id))
    holding = {key for _, key in now}
    in_force = {k.once_key for k in state.enrollment_findings}
    outputs: list[Output] = []
    kept_findings: list[KeptFinding] = []
    for k in state.enrollment_findings:
        if k.once_key in holding:
            kept_findings.append(k)
            continue
        reason = (
            f"no longer holds after {'correction' if isinstance(event, LabResultCorrected) else 'retraction'} "
            f"{event.event_id}: {k.rule_id} decided again at enrollment {enrollment.event_id} under version "
            f"{protocol.version} with the lab result "
            f"{'corrected' if isinstance(event, LabResultCorrected) else 'retracted'}"
        )
        outputs.append(
            FindingSuperseded(
                finding_id=k.finding_id,
                study_id=enrollment.study_id,
                site_id=enrollment.site_id,
                participant_id=enrollment.participant_id,
                rule_id=k.rule_id,
                superseded_by_event_id=event.event_id,
                reason=reason,
                occurred_at=event.occurred_at,
                protocol_version=protocol.version,
                ruleset_fingerprint=fingerprint(protocol),
            )
        )
    new_keys = []
    for finding, key in now:
        if key not in in_force:
            outputs.append(finding)
            kept_findings.append(KeptFinding(_id_of(finding), finding.rule_id, key))
            new_keys.append(key)
    superseded = in_force - holding
    raised = (state.raised - superseded) | set(new_keys)
    changed = evolve(state, screening=pack(screening), enrollment_findings=tuple(kept_findings), raised=raised)
    return changed, outputs


_CORRECTIONS = frozenset({"LabResultCorrected", "LabResultRetracted"})


def process(
    state: ParticipantState, event: ParticipantEvent, judge: Judge, *, max_kept_facts: int = MAX_KEPT_FACTS
) -> Step:
    """Decide, then fold: the one processing step, for live service and replay alike.

    An event id seen before changes nothing (a retried publish is not a new fact). Under a
    history, each event is decided under the version in force at its ``occurred_at`` and site;
    the participant's state is one state across versions (what was raised stays raised). A lab
    correction or retraction after enrollment decides the enrollment again (``_redecide``).

    Args:
        judge: a protocol version, or a history of versions.
        max_kept_facts: the facts one participant's state keeps at most (``events.bounds``);
            the default but in tests.

    Raises:
        ContractError: the state is left as it was, when the event names another site than the
            participant's registered site (``events.sites.check_site``), enrolls in an arm the
            version in force does not declare (``events.arms.check_arm``), corrects a result into
            one the contract refuses (``events.corrections.check_correction``), or would make the
            participant keep more than ``max_kept_facts`` facts (``events.bounds``).
    """
    event_id = event.event_id.bytes
    if _seen(state.seen_event_ids.packed, event_id):
        return _step(state, [], duplicate=True)
    registration = state.registration
    if registration is not None and event.site_id != registration.site_id:
        check_site(state, event)  # raises: another site's event
    in_force = version_in_force(judge, event.occurred_at, event.site_id)
    event_type = event.event_type
    if event_type == "ParticipantEnrolled":
        check_arm(in_force, event)
    unmatched = False
    if event_type in _CORRECTIONS:
        assert isinstance(event, LabResultCorrected | LabResultRetracted)
        unmatched = not check_correction(state, event)
    decided = _decide(state, event, in_force)
    folded = fold(state, event)
    raised = folded.raised | {key for _, key in decided} if decided else folded.raised
    outputs: list[Output] = [finding for finding, _ in decided]
    if event_type == "ParticipantEnrolled" and state.enrollment is None:
        kept = tuple(KeptFinding(_id_of(f), f.rule_id, key) for f, key in decided)
        folded = evolve(folded, enrollment_findings=kept)
    elif event_type in _CORRECTIONS and state.enrollment is not None:
        assert isinstance(event, LabResultCorrected | LabResultRetracted)
        folded, superseding = _redecide(evolve(folded, raised=raised), event, judge)
        raised = folded.raised
        outputs += superseding
    if folded is not state or raised is not state.raised:
        check_bound(state, folded, raised, event, max_kept_facts)
    seen = _seen_with(folded.seen_event_ids.packed, event_id)
    if folded is state:
        # A quiet event: the state copied once, for its seen id (``evolve`` without its keywords).
        folded = object.__new__(ParticipantState)
        folded.__dict__.update(state.__dict__)
    # ``folded`` was made by this step and nothing else holds it yet: finish it in place rather
    # than copy it once more (a copy per event is most of what a quiet event costs).
    changes = folded.__dict__
    changes["raised"] = raised
    changes["seen_event_ids"] = seen
    return _step(folded, outputs, unmatched=unmatched)


def _seen(packed: bytes, raw: bytes) -> bool:
    """Whether the id of 16 raw bytes is among ``packed`` ids (``SeenIds.has``, inlined: every
    event asks)."""
    at = packed.find(raw)
    while at > 0 and at % 16:  # a match across two ids is no match: look further
        at = packed.find(raw, at + 1)
    return at >= 0


def _seen_with(packed: bytes, raw: bytes) -> SeenIds:
    """``SeenIds.added`` for 16 raw bytes, without re-checking the length of ids known whole."""
    packed += raw
    if len(packed) > 16 * MAX_SEEN_EVENT_IDS:
        packed = packed[len(packed) - 16 * MAX_SEEN_EVENT_IDS :]
    seen = object.__new__(SeenIds)
    seen.packed = packed
    return seen


def _step(state: ParticipantState, findings: list[Output], *, duplicate: bool = False, unmatched: bool = False) -> Step:
    """A Step, made without the frozen dataclass's ``__init__`` (one attribute set at a time,
    through ``object.__setattr__``): one is made per event."""
    step = object.__new__(Step)
    step.__dict__.update(state=state, findings=findings, duplicate=duplicate, unmatched=unmatched)
    return step
