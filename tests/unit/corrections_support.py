"""What the tests of lab corrections and retractions share: ALT results, and events that correct
or retract one (built with tests/journey.py)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts import Output, ParticipantEvent
from events import process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from tests.builders import event
from tests.journey import ENROLLED, at, journey

ALT_4X: Any = (160, "U/L", 40)
ALT_2X: Any = (80, "U/L", 40)


def alt_of(events: Sequence[ParticipantEvent]) -> ParticipantEvent:
    return next(e for e in events if e.event_type == "ScreeningLabResulted" and e.payload.loinc == "1742-6")


def lab_of(events: Sequence[ParticipantEvent], loinc: str) -> ParticipantEvent:
    return next(e for e in events if e.event_type == "ScreeningLabResulted" and e.payload.loinc == loinc)


def corrected(target: uuid.UUID | str, value: float, uln: float = 40, *, day: int = ENROLLED + 2) -> ParticipantEvent:
    payload = {"corrected_event_id": str(target), "value": value, "unit": "U/L", "uln": uln}
    return event("LabResultCorrected", payload, at=at(day, "09:00:00"))


def retracted(target: uuid.UUID | str, *, day: int = ENROLLED + 2) -> ParticipantEvent:
    return event("LabResultRetracted", {"retracted_event_id": str(target)}, at=at(day, "09:00:00"))


def enrolled_journey(alt: Any) -> list[ParticipantEvent]:
    """Screening and enrollment only (treatment and visits raise nothing more, and would only slow the test)."""
    return journey(labs={"alt": alt}, treat=False)


def summary(found: Sequence[Output]) -> list[tuple[str, str]]:
    return [(type(f).__name__, f.rule_id) for f in found]


def final_state(events: Sequence[ParticipantEvent]) -> ParticipantState:
    state = ParticipantState(events[0].participant_id)
    for e in events:
        state = process(state, e, PROTOCOL).state
    return state


@dataclass(frozen=True)
class KafkaRecord:
    """A consumed record, as the rules service's record handler reads one."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
