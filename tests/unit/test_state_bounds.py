"""A participant's state is bounded: its snapshot never outgrows the broker's message limit,
whatever an upstream system sends (issue 21, item 2).

The attacker here is a runaway or hostile upstream: tens of thousands of events for one
participant, each the largest the contract accepts. Events beyond the bound are refused as
contract errors (dead-lettered by the live service, reported by a replay); the participant's
state, and every other participant's, stays as it was.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from contracts import ContractError, parse_event
from contracts.participant_events import MedicalHistory
from contracts.retained import retained
from events import process, snapshots
from events.bounds import MAX_KEPT_FACTS, PARTICIPANT_STATE_FULL, kept_facts
from events.decide import MAX_SEEN_EVENT_IDS
from events.fold import compact
from events.replay import Replay
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from protocol.state import SeenIds, evolve
from tests.builders import event, lab, registered

BROKER_LIMIT = 1_048_588
"""The broker's default ``message.max.bytes``: a snapshot record (key, value, headers, framing) must fit."""

ROOM = 16 * 1024
"""Key, headers and record framing, with room to spare."""

ASTRAL = "\U0001f600"
"""One character that JSON escapes to 12 bytes (a surrogate pair): the most a character grows."""

ID64 = "X" * 64  # the longest identifier the contract accepts


def largest(event_type: str, payload: dict[str, Any], n: int = 0) -> Any:
    """An event of the contract with every envelope identifier at its longest (of the type asked for)."""
    body = {
        "event_id": str(uuid.UUID(int=n + 1)),
        "event_type": event_type,
        "schema_version": 1,
        "study_id": ID64,
        "site_id": ID64,
        "participant_id": ID64,
        "occurred_at": "2025-11-06T10:30:00.123456+08:00",
        "recorded_at": "2025-11-06T10:30:00.123456+08:00",
        "source": {"system": ID64, "actor": ID64},
        "payload": payload,
    }
    return retained(parse_event(json.dumps(body, ensure_ascii=False).encode()))


def fill(item: dict[str, Any] | str, room: int = 60_000) -> int:
    """How many ``item`` fit a list in one event of at most 64 KB."""
    return room // len(json.dumps(item, ensure_ascii=False).encode())


def largest_state(*, enrolled: bool) -> ParticipantState:
    """The largest state the bound allows: every single event at its largest, ``MAX_KEPT_FACTS``
    of the largest kept fact, every seen id; after enrollment, the packed screening record of
    such a state too, and ``MAX_KEPT_FACTS`` long raised keys besides."""
    treatment = {"agent": ASTRAL * 80, "start": "2020-01-01"}
    history = {
        "immunosuppressants": [treatment] * fill(treatment),
        **{name: False for name in MedicalHistory.model_fields if name != "immunosuppressants"},
    }
    item = ASTRAL * 80
    eular = {"criteria": "EULAR/ACR 2019", "ana_entry_met": True, "score": 51, "items": [item] * fill(item)}
    gcsf = [
        largest(
            "ConcomitantMedicationRecorded",
            {"drug_class": "G-CSF", "agent": ASTRAL * 80, "start": "2025-01-01", "end": "2025-01-02"},
            n,
        )
        for n in range(MAX_KEPT_FACTS)
    ]
    screening = ParticipantState(
        ID64,
        consent_withdrawal=largest("ConsentWithdrawn", {"reason": ASTRAL * 500}),
        history=largest("MedicalHistoryRecorded", history),
        eular=largest("SLEClassificationScored", eular),
        gcsf=tuple(gcsf),
        seen_event_ids=SeenIds(b"\x01" * 16 * MAX_SEEN_EVENT_IDS),
    )
    assert kept_facts(screening) == MAX_KEPT_FACTS
    if not enrolled:
        return screening
    raised = frozenset(f"{'R' * 40}@{uuid.UUID(int=n)}" for n in range(MAX_KEPT_FACTS))
    return evolve(
        screening,
        history=None,
        eular=None,
        gcsf=(),
        screening=snapshots.pack(compact(screening)),
        raised=raised,
        enrollment=largest("ParticipantEnrolled", {"arm": "high_dose"}),
    )


@pytest.mark.parametrize("enrolled", [False, True], ids=["screening", "enrolled"])
def test_the_largest_state_the_bound_allows_fits_the_brokers_message_limit(enrolled: bool) -> None:
    state = largest_state(enrolled=enrolled)
    size = len(snapshots.encode(state))
    assert size + ROOM < BROKER_LIMIT, f"{size:,} bytes"
    assert snapshots.decode(snapshots.encode(state)) == state


def test_a_runaway_upstream_is_refused_beyond_the_bound_and_the_state_stays_as_it_was() -> None:
    state = process(ParticipantState("P-0001"), registered("2011-02-03"), PROTOCOL).state
    errors: list[ContractError] = []
    at_bound: ParticipantState | None = None
    for n in range(3 * 20):
        try:
            state = process(state, lab(value=2.0 + n / 100, at=f"2025-11-06T10:{n:02d}:00+08:00"), PROTOCOL,
                            max_kept_facts=20).state  # fmt: skip
        except ContractError as e:
            errors.append(e)
            at_bound = at_bound or state
    refused = len(errors)
    assert {(v.field, v.kind) for e in errors for v in e.violations} == {("participant_id", PARTICIPANT_STATE_FULL)}
    assert all("keeps 20 facts" in str(e) for e in errors)
    assert refused >= 40  # 20 labs at most, less the keys of findings the first ones raised
    assert kept_facts(state) == 20
    assert state is at_bound  # nothing refused changed it


def test_at_the_bound_an_event_that_adds_no_fact_is_still_processed() -> None:
    state = process(ParticipantState("P-0001"), registered("2011-02-03"), PROTOCOL).state
    first = lab(value=2.0)
    state = process(state, first, PROTOCOL).state
    bound = kept_facts(state)
    with pytest.raises(ContractError):
        process(state, lab(value=3.0), PROTOCOL, max_kept_facts=bound)
    correction = event("LabResultCorrected", {"corrected_event_id": str(first.event_id), "value": 2.5,
                                              "unit": "10*9/L", "uln": None})  # fmt: skip
    step = process(state, correction, PROTOCOL, max_kept_facts=bound)
    (kept,) = step.state.labs.values()
    assert kept[0].payload.value == 2.5
    adverse = event("AdverseEventReported", {"term": "headache", "ctcae_grade": 1, "serious": False})
    assert correction.event_id.bytes in step.state.seen_event_ids.packed
    assert process(step.state, adverse, PROTOCOL, max_kept_facts=bound).state.labs == step.state.labs


def test_replay_reports_what_the_bound_refuses_and_decides_the_others_alike() -> None:
    bounded, unbounded = Replay(PROTOCOL, max_kept_facts=5), Replay(PROTOCOL)
    others = [registered("2011-02-03", participant="P-0002"), lab(value=0.4, participant="P-0002")]
    runaway = [lab(value=2.0 + n / 100, at=f"2025-11-06T10:{n:02d}:00+08:00") for n in range(10)]
    refused = 0
    for e in [registered("2011-02-03"), *runaway, *others]:
        for replay in (bounded, unbounded):
            try:
                replay.feed(e)
            except ContractError:
                refused += 1
    assert refused >= 5  # only the bounded replay refused
    assert kept_facts(bounded.states["P-0001"]) == 5
    assert bounded.states["P-0002"] == unbounded.states["P-0002"]
