"""Lab corrections and retractions supersede, never edit (lab-gateway issue, item 6).

A correction before enrollment replaces the result in the screening record; after enrollment it
decides the enrollment again from the record kept then: a finding that no longer holds is
superseded (FindingSuperseded), a finding that now holds is raised with an id derived from the
correction. Built with tests/journey.py: each case is one clinical fact. The shell (records,
read model, SDTM DV, audit diff, dashboard, replay): test_corrections_shell.py.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from contracts import (
    EVENT_TYPES,
    ContractError,
    DeviationRaised,
    FindingSuperseded,
    ParticipantEvent,
    encode,
    parse_event,
)
from events import finding_id, process, snapshots
from events.replay import Replay
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from protocol.state import NO_IDS, evolve
from tests.builders import event
from tests.journey import ENROLLED, LAB_DAY, at, journey, outputs
from tests.unit.corrections_support import (
    ALT_2X,
    ALT_4X,
    KafkaRecord,
    alt_of,
    corrected,
    enrolled_journey,
    final_state,
    lab_of,
    retracted,
    summary,
)


def test_the_contract_knows_corrections_and_retractions() -> None:
    assert {"LabResultCorrected", "LabResultRetracted"} <= set(EVENT_TYPES)
    with pytest.raises(ContractError, match="at least"):  # LabResult's magnitude check, reused
        parse_event(encode(corrected(uuid.uuid4(), 80)).replace(b'"value":80.0', b'"value":1e-15'))
    with pytest.raises(ContractError, match="uln"):
        parse_event(encode(corrected(uuid.uuid4(), 80)).replace(b'"uln":40.0', b'"uln":0.0'))


def test_a_correction_after_enrollment_supersedes_a_deviation_that_no_longer_holds() -> None:
    events = enrolled_journey(ALT_4X)
    before = outputs(events)
    assert summary(before) == [("DeviationRaised", "ELIG-IN09")]
    correction = corrected(alt_of(events).event_id, 80)
    found = outputs([*events, correction])[len(before) :]
    (superseded,) = found
    assert isinstance(superseded, FindingSuperseded)
    raised = before[0]
    assert isinstance(raised, DeviationRaised)
    assert superseded.finding_id == raised.deviation_id
    assert (superseded.rule_id, superseded.participant_id, superseded.site_id) == ("ELIG-IN09", "P-0001", "GZ-01")
    assert superseded.superseded_by_event_id == correction.event_id
    assert superseded.occurred_at == correction.occurred_at
    assert superseded.reason.startswith(f"no longer holds after correction {correction.event_id}: ")
    assert superseded.protocol_version == raised.protocol_version
    assert superseded.ruleset_fingerprint == raised.ruleset_fingerprint


def test_a_correction_after_enrollment_raises_a_deviation_that_now_holds() -> None:
    events = enrolled_journey(ALT_2X)
    assert outputs(events) == []
    correction = corrected(alt_of(events).event_id, 160)
    (raised,) = outputs([*events, correction])
    assert isinstance(raised, DeviationRaised)
    assert raised.rule_id == "ELIG-IN09"
    enrollment = next(e for e in events if e.event_type == "ParticipantEnrolled")
    triggers = (enrollment.event_id, correction.event_id)
    assert raised.trigger_event_ids == triggers
    assert raised.deviation_id == finding_id(raised.study_id, "P-0001", "ELIG-IN09", triggers)
    assert raised.occurred_at == enrollment.occurred_at  # the deviation happened at enrollment
    assert raised.evidence["alt_uln_multiple"] == 4.0


def test_correcting_back_and_forth_supersedes_and_raises_again() -> None:
    events = enrolled_journey(ALT_4X)
    alt = alt_of(events).event_id
    first, second, third = corrected(alt, 80), corrected(alt, 160, day=13), corrected(alt, 80, day=14)
    found = outputs([*events, first, second, third])
    assert summary(found) == [
        ("DeviationRaised", "ELIG-IN09"),
        ("FindingSuperseded", "ELIG-IN09"),
        ("DeviationRaised", "ELIG-IN09"),
        ("FindingSuperseded", "ELIG-IN09"),
    ]
    again, last = found[2], found[3]
    assert isinstance(again, DeviationRaised)
    assert isinstance(last, FindingSuperseded)
    assert last.finding_id == again.deviation_id
    assert last.superseded_by_event_id == third.event_id


def test_a_retraction_of_a_required_lab_after_enrollment_raises_elig_missing() -> None:
    events = enrolled_journey(ALT_2X)
    retraction = retracted(alt_of(events).event_id)
    (raised,) = outputs([*events, retraction])
    assert isinstance(raised, DeviationRaised)
    assert raised.rule_id == "ELIG-MISSING"
    assert "alt" in raised.evidence["missing"]
    assert raised.trigger_event_ids[1] == retraction.event_id


def test_a_retraction_supersedes_the_deviation_the_result_raised_and_says_what_is_missing() -> None:
    events = enrolled_journey(ALT_4X)
    found = outputs([*events, retracted(alt_of(events).event_id)])
    assert summary(found) == [
        ("DeviationRaised", "ELIG-IN09"),
        ("FindingSuperseded", "ELIG-IN09"),
        ("DeviationRaised", "ELIG-MISSING"),
    ]
    superseded = found[1]
    assert isinstance(superseded, FindingSuperseded)
    assert superseded.reason.startswith("no longer holds after retraction ")


@pytest.mark.parametrize(
    ("alt", "corrected_to", "expected"),
    [
        (ALT_4X, 80, []),  # corrected to 2×ULN before enrollment: nothing is raised, nothing superseded
        (ALT_2X, 160, [("DeviationRaised", "ELIG-IN09")]),  # corrected to 4×ULN before enrollment
    ],
)
def test_a_correction_before_enrollment_changes_the_decision_at_enrollment(
    alt: Any, corrected_to: float, expected: list[tuple[str, str]]
) -> None:
    screening = journey(labs={"alt": alt}, enroll=False)
    correction = corrected(alt_of(screening).event_id, corrected_to, day=LAB_DAY + 1)
    events = journey(labs={"alt": alt}, treat=False)
    enrollment = events[len(screening) :]
    found = outputs([*screening, correction, *enrollment])
    assert summary(found) == expected
    if found:
        assert isinstance(found[0], DeviationRaised)
        assert found[0].trigger_event_ids == (enrollment[0].event_id,)  # decided at enrollment, as usual


def test_a_duplicate_correction_changes_nothing() -> None:
    events = enrolled_journey(ALT_4X)
    correction = corrected(alt_of(events).event_id, 80)
    once = outputs([*events, correction])
    assert outputs([*events, correction, correction]) == once
    assert final_state([*events, correction, correction]) == final_state([*events, correction])


def test_the_same_correction_twice_under_new_ids_changes_nothing_more() -> None:
    events = enrolled_journey(ALT_4X)
    alt = alt_of(events).event_id
    once = outputs([*events, corrected(alt, 80)])
    assert outputs([*events, corrected(alt, 80), corrected(alt, 80, day=13)]) == once


@pytest.mark.parametrize(
    "change",
    [
        lambda events: corrected(uuid.UUID(int=7), 80),  # an id no event has
        lambda events: retracted(uuid.UUID(int=7)),
        lambda events: corrected(events[0].event_id, 80),  # not a lab result
    ],
    ids=["unknown-correction", "unknown-retraction", "not-a-lab"],
)
def test_a_correction_of_nothing_kept_changes_nothing_and_is_reported(change: Any) -> None:
    events = enrolled_journey(ALT_4X)
    before = outputs(events)
    after = [*events, change(events)]
    assert outputs(after) == before
    assert evolve(final_state(after), seen_event_ids=NO_IDS) == evolve(final_state(events), seen_event_ids=NO_IDS)
    step = process(final_state(events), after[-1], PROTOCOL)
    assert step.unmatched
    assert step.findings == []
    replay = Replay(PROTOCOL)
    for e in after:
        replay.feed(e)
    assert replay.unmatched_corrections == 1


def test_a_correction_that_applies_is_not_reported() -> None:
    events = enrolled_journey(ALT_4X)
    step = process(final_state(events), corrected(alt_of(events).event_id, 80), PROTOCOL)
    assert not step.unmatched
    assert summary(step.findings) == [("FindingSuperseded", "ELIG-IN09")]


def unfit(target: uuid.UUID, unit: str, value: Any = 80, *, day: int = ENROLLED + 2) -> ParticipantEvent:
    payload = {"corrected_event_id": str(target), "value": value, "unit": unit, "uln": 40}
    return event("LabResultCorrected", payload, at=at(day, "09:00:00"))


@pytest.mark.parametrize("enrolled", [True, False], ids=["after-enrollment", "before-enrollment"])
@pytest.mark.parametrize(
    ("target", "unit", "value", "kind", "field"),
    [
        ("1742-6", "mg/dL", 80, "lab_unit_unknown", "payload.unit"),  # ALT in mg/dL
        ("5196-1", "U/L", 80, "lab_result_kind", "payload.value"),  # HBsAg is qualitative: no number
    ],
    ids=["alt-in-mg-per-dl", "a-number-for-hbsag"],
)
def test_a_correction_the_contract_refuses_for_its_result_is_a_contract_error(
    enrolled: bool, target: str, unit: str, value: Any, kind: str, field: str
) -> None:
    events = enrolled_journey(ALT_4X)
    if not enrolled:
        events = events[: next(i for i, e in enumerate(events) if e.event_type == "ParticipantEnrolled")]
    correction = unfit(lab_of(events, target).event_id, unit, value, day=ENROLLED + 2 if enrolled else LAB_DAY)
    state = final_state(events)
    with pytest.raises(ContractError) as refused:
        process(state, correction, PROTOCOL)
    assert [(v.field, v.kind) for v in refused.value.violations] == [(field, kind)]
    assert target in str(refused.value)  # the reason names the corrected result's LOINC code
    assert refused.value.event_id == str(correction.event_id)
    # Replay reports and skips it: the same outputs and state as without it.
    replay = Replay(PROTOCOL)
    for e in events:
        replay.feed(e)
    with pytest.raises(ContractError):
        replay.feed(correction)
    assert replay.states[state.participant_id] == state


def test_the_live_handler_dead_letters_an_unfit_correction_and_counts_an_unmatched_one() -> None:
    from collections import Counter

    from services.kafka import KafkaSettings
    from services.rules.records import RecordHandler

    settings = KafkaSettings(study_id="NCT06904729")
    handler = RecordHandler(settings, PROTOCOL)
    events = enrolled_journey(ALT_4X)
    log = [*events, unfit(alt_of(events).event_id, "mg/dL"), corrected(uuid.UUID(int=7), 80)]
    states: dict[str, ParticipantState] = {}
    outcomes: Counter[str] = Counter()
    out = []
    for offset, e in enumerate(log):
        record = KafkaRecord(settings.topics.participant_events, 0, offset, b"P-0001", encode(e))
        out += handler.handle(record, states, outcomes=outcomes)
    dead = [o for o in out if o.topic == settings.topics.dead_letter]
    assert [o.value for o in dead] == [encode(log[-2])]
    headers = dict(dead[0].headers)
    assert headers["trialguard.error.field"] == b"payload.unit"
    assert b"mg/dL" in headers["trialguard.error"]
    assert b"1742-6" in headers["trialguard.error"]
    assert outcomes == {"correction_unmatched": 1}
    assert [o.value for o in out if o.topic != settings.topics.dead_letter] == [encode(f) for f in outputs(events)]


def test_replaying_twice_gives_the_same_outputs() -> None:
    events = enrolled_journey(ALT_4X)
    alt = alt_of(events).event_id
    log = [*events, corrected(alt, 80), corrected(alt, 160, day=13), retracted(alt, day=14)]

    def run() -> list[bytes]:
        replay = Replay(PROTOCOL)
        return [encode(f) for e in log for f in replay.feed(e)]

    assert run() == run()
    replay = Replay(PROTOCOL)
    for e in log:
        replay.feed(e)
    assert replay.superseded == 2
    assert replay.findings_by_rule == {"ELIG-IN09": 2, "ELIG-MISSING": 1}


def test_the_enrollment_keeps_what_deciding_again_needs() -> None:
    state = final_state(enrolled_journey(ALT_4X))
    assert state.labs == {}  # the live screening record is dropped at enrollment, as before
    assert state.screening is not None
    kept_state = snapshots.unpack(state.screening)
    assert "alt" in kept_state.labs
    assert kept_state.seen_event_ids == NO_IDS
    assert kept_state.screening is None
    (kept,) = state.enrollment_findings
    assert (kept.rule_id, kept.once_key) == ("ELIG-IN09", "ELIG-IN09")
    assert final_state(journey(enroll=False)).screening is None  # not enrolled: nothing kept


def test_a_snapshot_round_trips_the_kept_record_and_findings() -> None:
    events = enrolled_journey(ALT_4X)
    state = final_state([*events, corrected(alt_of(events).event_id, 80)])
    assert state.screening is not None
    restored = snapshots.decode(snapshots.encode(state))
    assert restored == state
    # and a correction after the restore decides as it would have without one
    again = corrected(alt_of(events).event_id, 160, day=13)
    assert process(restored, again, PROTOCOL) == process(state, again, PROTOCOL)


def test_a_version_3_snapshot_is_upcast() -> None:
    """Version 3 nested the kept pre-enrollment state's body where version 4 packs it."""
    events = enrolled_journey(ALT_4X)
    state = final_state([*events, corrected(alt_of(events).event_id, 80)])
    assert state.screening is not None
    body = json.loads(snapshots.encode(state))
    nested = json.loads(snapshots.encode(snapshots.unpack(state.screening)))
    version_3 = {**body, "snapshot_version": 3, "screening": {**nested, "snapshot_version": 3}}
    assert snapshots.decode(json.dumps(version_3).encode()) == state


def test_a_version_2_snapshot_is_upcast() -> None:
    """Version 2 kept no pre-enrollment record: it restores with none, and a later correction
    finds no kept result (nothing changes) until participant-events is replayed."""
    events = enrolled_journey(ALT_4X)
    state = final_state(events)
    body = json.loads(snapshots.encode(state))
    version_2 = {k: v for k, v in body.items() if k not in ("screening", "enrollment_findings")}
    version_2["snapshot_version"] = 2
    restored = snapshots.decode(json.dumps(version_2).encode())
    assert restored == evolve(state, screening=None, enrollment_findings=())
    assert process(restored, corrected(alt_of(events).event_id, 80), PROTOCOL).findings == []
