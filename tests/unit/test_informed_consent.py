"""CONSENT-01, one case per clause and boundary: given these events, these deviations."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from contracts import DeviationRaised, ParticipantEvent
from events import process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from tests.builders import consent, event, lab, registered

CONSENT_DAY = "2025-11-03"


def _at(day: str, time: str = "10:30:00") -> str:
    return f"{day}T{time}+08:00"


def raised(events: Sequence[ParticipantEvent]) -> list[str]:
    """CONSENT-01 findings raised by a participant's events (other rules are tested elsewhere)."""
    state, out = ParticipantState("P-0001"), []
    for e in events:
        step = process(state, e, PROTOCOL)
        state = step.state
        out += [f.rule_id for f in step.findings if f.rule_id == "CONSENT-01"]
    return out


MINOR = registered("2012-05-01", at=_at("2025-10-01"))  # 13 at consent
both_signed = [consent("participant", at=_at(CONSENT_DAY)), consent("guardian", at=_at(CONSENT_DAY, "10:35:00"))]

CASES = [
    # (case, events, expected rule ids)
    ("procedure after complete consent", [MINOR, *both_signed, lab(at=_at("2025-11-06"))], []),
    ("procedure with no consent", [MINOR, lab(at=_at("2025-11-06"))], ["CONSENT-01"]),
    ("minor: participant signed, guardian not", [MINOR, both_signed[0], lab(at=_at("2025-11-06"))], ["CONSENT-01"]),
    ("minor: guardian signed, participant not", [MINOR, both_signed[1], lab(at=_at("2025-11-06"))], ["CONSENT-01"]),
    ("procedure at the very second consent completes", [MINOR, *both_signed, lab(at=_at(CONSENT_DAY, "10:35:00"))], []),
    (
        "procedure one second before consent completes",
        [MINOR, *both_signed, lab(at=_at(CONSENT_DAY, "10:34:59"))],
        ["CONSENT-01"],
    ),
    ("same instant in another offset", [MINOR, *both_signed, lab(at="2025-11-03T02:35:00+00:00")], []),
    (
        "18th birthday on the consent day: no guardian needed",
        [registered("2007-11-03"), both_signed[0], lab(at=_at("2025-11-06"))],
        [],
    ),
    (
        "day before the 18th birthday: guardian needed",
        [registered("2007-11-04"), both_signed[0], lab(at=_at("2025-11-06"))],
        ["CONSENT-01"],
    ),
    ("unknown age: guardian needed", [both_signed[0], lab(at=_at("2025-11-06"))], ["CONSENT-01"]),
    ("unknown age, both signed", [*both_signed, lab(at=_at("2025-11-06"))], []),
    (
        "signature recorded after the procedure counts only from when it arrives",
        [MINOR, lab(at=_at("2025-11-06")), *both_signed, lab(at=_at("2025-11-07"))],
        ["CONSENT-01"],
    ),
    (
        "late-recorded lab collected before consent",
        [MINOR, *both_signed, lab(at=_at("2025-11-01"))],
        ["CONSENT-01"],
    ),
    (
        "raised once per participant",
        [MINOR, lab(at=_at("2025-11-01")), lab(at=_at("2025-11-02"), loinc="731-0")],
        ["CONSENT-01"],
    ),
    *[
        (f"{kind} before consent", [MINOR, e], ["CONSENT-01"])
        for kind, e in [
            ("SLEDAI-2K", event("DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": 12})),
            ("ECOG", event("PerformanceStatusAssessed", {"scale": "ECOG", "score": 1})),
            ("leukapheresis", event("LeukapheresisPerformed")),
            ("lymphodepletion", event("LymphodepletionAdministered", {"regimen": "Flu/Cy"})),
            ("infusion", event("CarTInfused", {"total_cells": 1.4e7, "weight_kg": 28.0, "product_lot": "L1"})),
            ("follow-up visit", event("FollowUpVisitCompleted", {"visit": "D7"})),
        ]
    ],
    *[
        (f"{kind} before consent is history, not a procedure", [MINOR, e], [])
        for kind, e in [
            ("kidney biopsy", event("KidneyBiopsyReported", {"isn_rps_class": "IV", "active_lesions": True})),
            (
                "EULAR/ACR score",
                event("SLEClassificationScored", {"criteria": "EULAR/ACR 2019", "ana_entry_met": True, "score": 19}),
            ),
            (
                "concomitant medication",
                event(
                    "ConcomitantMedicationRecorded",
                    {"drug_class": "G-CSF", "agent": "filgrastim", "start": "2025-10-01"},
                ),
            ),
        ]
    ],
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_consent_01(events: list[ParticipantEvent], expected: list[str]) -> None:
    assert raised(events) == expected


def test_consent_01_explains_itself() -> None:
    trigger = lab(at=_at("2025-11-01"))
    step = process(process(ParticipantState("P-0001"), MINOR, PROTOCOL).state, trigger, PROTOCOL)
    (deviation,) = step.findings
    assert isinstance(deviation, DeviationRaised)
    assert deviation.model_dump(
        mode="json", include={"rule_id", "protocol_reference", "protocol_version", "category", "severity"}
    ) == {
        "rule_id": "CONSENT-01",
        "protocol_reference": "Inclusion 8",
        "protocol_version": "1.0",
        "category": "INFORMED CONSENT",
        "severity": "important",
    }
    assert deviation.trigger_event_ids == (trigger.event_id,)
    assert deviation.occurred_at == trigger.occurred_at
    assert deviation.evidence == {
        "procedure": "ScreeningLabResulted",
        "procedure_at": "2025-11-01T10:30:00+08:00",
        "signed": [],
    }
