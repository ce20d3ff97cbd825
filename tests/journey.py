"""A participant's journey through NCT06904729 as contract-v1 events, for table-driven rule tests.

``journey()`` with no arguments is a clean participant (like E-01 of the shared example): every
assessment present and in range, consent before any procedure, the right dose at the right time,
every visit in its window. It raises nothing. Each keyword changes one thing, so a test case reads
as the one clinical fact it is about.

Days are counted from consent (day 0 = 2025-11-03); enrollment is on day 10, infusion on day 30.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from contracts import Finding, FindingSuperseded, Output, ParticipantEvent
from events import process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from tests.builders import event

DAY0 = dt.date(2025, 11, 3)
ENROLLED = 10
LAB_DAY = 3
INFUSED = 30

Lab = tuple[float | str, str | None, float | None]  # value, unit, ULN

LABS: dict[str, tuple[str, Lab]] = {
    "lymphocytes": ("731-0", (1.6, "10*9/L", None)),
    "wbc": ("6690-2", (4.2, "10*9/L", None)),
    "neutrophils": ("751-8", (2.1, "10*9/L", None)),
    "hemoglobin": ("718-7", (98, "g/L", None)),
    "alt": ("1742-6", (30, "U/L", 40)),
    "ast": ("1920-8", (28, "U/L", 40)),
    "total_bilirubin": ("1975-2", (0.6, "mg/dL", 1.2)),
    "creatinine": ("2160-0", (0.55, "mg/dL", None)),
    "inr": ("6301-6", (1.0, "{INR}", 1.2)),
    "pt": ("5902-2", (12.5, "s", 13.5)),
    "ana": ("5048-4", ("1:320", "{titer}", None)),
    "cd19": ("8117-4", (12.5, "%", None)),
    "hbsag": ("5196-1", ("negative", None, None)),
    "anti_hbc": ("16933-4", ("negative", None, None)),
    "anti_hcv": ("16128-1", ("negative", None, None)),
    "hiv": ("31201-7", ("negative", None, None)),
    "syphilis": ("24110-9", ("negative", None, None)),
}
"""The screening labs of a clean participant: analyte → (LOINC, (value, unit, ULN))."""

HISTORY: dict[str, Any] = {
    "immunosuppressants": [
        {"agent": "mycophenolate mofetil", "start": "2024-01-10", "end": "2025-09-01"},
        {"agent": "tacrolimus", "start": "2024-06-01", "end": "2025-12-01"},
    ],
    "remission_achieved": False,
    "relapse_after_remission": False,
    "proteinuria_in_remission": False,
    "prior_car_t": False,
    "kidney_transplant": False,
    "malignancy_within_5y": False,
    "other_trial_within_3m": False,
    "congenital_ig_deficiency": False,
    "serious_drug_allergy": False,
    "uncontrolled_infection": False,
    "severe_organ_dysfunction": False,
    "severe_cns_or_psychiatric": False,
    "gilbert_syndrome": False,
}

VISIT_DAYS = {"D7": 7, "D14": 14, "D28": 28, "M3": 90, "M6": 180, "M12": 365, "M18": 545, "M24": 730}


def at(day: int, time: str = "10:30:00") -> str:
    """The event time of a study day (days from consent), in the site's offset."""
    return f"{(DAY0 + dt.timedelta(days=day)).isoformat()}T{time}+08:00"


def date(day: int) -> str:
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def journey(
    *,
    pid: str = "P-0001",
    birth_date: str = "2015-09-14",
    height_cm: float = 133.0,
    signers: Sequence[str] = ("participant", "guardian"),
    consent_day: int = 0,
    biopsy: tuple[str, bool] = ("IV", True),
    biopsy_day: int = -40,
    eular: tuple[bool, int] | None = (True, 19),
    sledai: int | None = 12,
    sledai_day: int = LAB_DAY,
    ecog: int | None = 1,
    labs: Mapping[str, Lab | tuple[str, Lab] | None] | None = None,
    lab_day: int = LAB_DAY,
    history: Mapping[str, Any] | None = None,
    gcsf: tuple[int, int | None] | None = None,
    eligible: bool | None = True,
    arm: str = "low_dose",
    enroll: bool = True,
    treat: bool = True,
    leukapheresis_day: int | None = 12,
    lymphodepletion_day: int | None = 26,
    infusion_day: int | None = INFUSED,
    total_cells: float = 13_750_000.0,
    weight_kg: float = 27.5,
    visits: Mapping[str, int | None] | None = None,
    extra: Sequence[ParticipantEvent] = (),
) -> list[ParticipantEvent]:
    """A participant's events in log order; see the module docstring for the defaults.

    ``labs`` overrides screening labs by analyte: a (value, unit, ULN) triple, a (LOINC, triple)
    pair for another code, or None to leave it out. ``visits`` maps a visit code to its day after
    infusion, or None for a missed visit. ``extra`` events are appended at the end.
    """
    e: list[ParticipantEvent] = []

    def add(event_type: str, payload: dict[str, Any] | None, day: int, time: str = "10:30:00") -> None:
        e.append(event(event_type, payload, participant=pid, at=at(day, time)))

    add(
        "ParticipantRegistered",
        {"birth_date": birth_date, "sex": "F", "height_cm": height_cm, "weight_kg": weight_kg},
        -7,
    )
    for i, signer in enumerate(signers):
        add("ConsentSigned", {"signer": signer, "consent_version": "1.0"}, consent_day, f"10:3{i}:00")
    add("KidneyBiopsyReported", {"isn_rps_class": biopsy[0], "active_lesions": biopsy[1]}, biopsy_day)
    if gcsf is not None:
        add("ConcomitantMedicationRecorded",
            {"drug_class": "G-CSF", "agent": "filgrastim", "start": date(gcsf[0]),
             "end": None if gcsf[1] is None else date(gcsf[1])}, 1)  # fmt: skip
    merged: dict[str, tuple[str, Lab] | None] = dict(LABS)
    for name, given in (labs or {}).items():
        merged[name] = (
            given if given is None or (isinstance(given[0], str) and len(given) == 2) else (LABS[name][0], given)
        )
    for loinc_and_lab in merged.values():
        if loinc_and_lab is not None:
            loinc, (value, unit, uln) = loinc_and_lab
            add("ScreeningLabResulted", {"loinc": loinc, "value": value, "unit": unit, "uln": uln}, lab_day)
    if sledai is not None:
        add("DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": sledai}, sledai_day)
    if eular is not None:
        add(
            "SLEClassificationScored",
            {"criteria": "EULAR/ACR 2019", "ana_entry_met": eular[0], "score": eular[1]},
            LAB_DAY,
        )
    if history is None or history:
        add("MedicalHistoryRecorded", {**HISTORY, **(history or {})}, LAB_DAY)
    if ecog is not None:
        add("PerformanceStatusAssessed", {"scale": "ECOG", "score": ecog}, sledai_day)
    if eligible is not None:
        add("EligibilityConfirmed", {"investigator": "inv-1", "eligible": eligible}, ENROLLED, "08:30:00")
    if not enroll:
        return [*e, *extra]
    add("ParticipantEnrolled", {"arm": arm}, ENROLLED)
    if not treat:
        return [*e, *extra]
    if leukapheresis_day is not None:
        add("LeukapheresisPerformed", None, leukapheresis_day)
    if lymphodepletion_day is not None:
        add("LymphodepletionAdministered", {"regimen": "fludarabine+cyclophosphamide"}, lymphodepletion_day)
    if infusion_day is not None:
        add("CarTInfused", {"total_cells": total_cells, "weight_kg": weight_kg, "product_lot": "LOT-1"}, infusion_day)
        for code, day in {**VISIT_DAYS, **(visits or {})}.items():
            if day is not None:
                add("FollowUpVisitCompleted", {"visit": code}, infusion_day + day, "11:30:00")
    return [*e, *extra]


def outputs(events: Sequence[ParticipantEvent]) -> list[Output]:
    """Every output the events give (findings, FindingSuperseded), in order, through the one processing step."""
    states: dict[str, ParticipantState] = {}
    found: list[Output] = []
    for e in events:
        step = process(states.get(e.participant_id) or ParticipantState(e.participant_id), e, PROTOCOL)
        states[e.participant_id] = step.state
        found += step.findings
    return found


def replay(events: Sequence[ParticipantEvent]) -> list[Finding]:
    """Every finding the events raise, in order (FindingSuperseded left out: see ``outputs``)."""
    return [f for f in outputs(events) if not isinstance(f, FindingSuperseded)]


def rule_ids(events: Sequence[ParticipantEvent]) -> list[str]:
    """The rule ids the events raise, in order."""
    return [f.rule_id for f in replay(events)]
