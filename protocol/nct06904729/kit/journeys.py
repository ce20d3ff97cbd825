"""A participant's journey through NCT06904729 as contract-v1 events, for scenarios and tests.

``ParticipantJourney()`` with no changes is a clean participant: every assessment present and in
range, consent before any procedure, the right dose at the right time, every visit in its window.
It raises nothing. Each field changes one clinical fact.

Days are study days, counted from consent (day 0 = 2025-11-03); enrollment is on day 10, the
screening assessments on day 3, infusion on day 30.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from contracts import ParticipantEvent
from protocol.kit import Extra, journey_event

DAY0 = dt.date(2025, 11, 3)
ENROLLED = 10
LAB_DAY = 3
INFUSED = 30
STUDY = "NCT06904729"

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

OTHER_LOINC = {"hbv_dna": "42595-9", "hcv_rna": "11259-9"}
"""Labs a clean participant has no result of, by the LOINC a scenario gives them with."""

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
    """The calendar date of a study day."""
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def event(
    event_type: str,
    payload: Mapping[str, Any] | None = None,
    *,
    participant: str = "P-0001",
    at: str = "2025-11-06T10:30:00+08:00",
    site: str = "GZ-01",
) -> ParticipantEvent:
    """A parsed contract-v1 event; its id is derived from its fields, so a journey is the same every time."""
    return journey_event(STUDY, event_type, payload, participant=participant, at=at, site=site)


@dataclass
class ParticipantJourney:
    """A participant's journey; ``events()`` gives it. See the module docstring for the defaults.

    ``labs`` overrides screening labs by analyte: a (value, unit, ULN) triple, a (LOINC, triple)
    pair for another code, or None to leave it out. ``visits`` maps a visit code to its day after
    infusion, or None for a missed visit. ``extra`` events are appended at the end.
    """

    pid: str = "P-0001"
    birth_date: str = "2015-09-14"
    height_cm: float = 133.0
    signers: Sequence[str] = ("participant", "guardian")
    consent_day: int = 0
    biopsy: tuple[str, bool] = ("IV", True)
    biopsy_day: int = -40
    eular: tuple[bool, int] | None = (True, 19)
    sledai: int | None = 12
    sledai_day: int = LAB_DAY
    ecog: int | None = 1
    labs: dict[str, Lab | tuple[str, Lab] | None] = field(default_factory=dict)
    lab_day: int = LAB_DAY
    lab_time: str = "10:30:00"
    history: dict[str, Any] | None = None
    gcsf: tuple[int, int | None] | None = None
    eligible: bool | None = True
    eligibility_time: str = "08:30:00"
    arm: str = "low_dose"
    enroll: bool = True
    treat: bool = True
    leukapheresis_day: int | None = 12
    lymphodepletion_day: int | None = 26
    infusion_day: int | None = INFUSED
    total_cells: float = 13_750_000.0
    weight_kg: float = 27.5
    visits: dict[str, int | None] = field(default_factory=dict)
    extra: list[Extra | ParticipantEvent] = field(default_factory=list)

    def events(self) -> list[ParticipantEvent]:
        """The participant's events in log order."""
        e: list[ParticipantEvent] = []

        def add(event_type: str, payload: dict[str, Any] | None, day: int, time: str = "10:30:00") -> None:
            e.append(event(event_type, payload, participant=self.pid, at=at(day, time)))

        add("ParticipantRegistered",
            {"birth_date": self.birth_date, "sex": "F", "height_cm": self.height_cm, "weight_kg": self.weight_kg},
            -7)  # fmt: skip
        for i, signer in enumerate(self.signers):
            add("ConsentSigned", {"signer": signer, "consent_version": "1.0"}, self.consent_day, f"10:3{i}:00")
        add(
            "KidneyBiopsyReported", {"isn_rps_class": self.biopsy[0], "active_lesions": self.biopsy[1]}, self.biopsy_day
        )
        if self.gcsf is not None:
            start, end = self.gcsf
            add("ConcomitantMedicationRecorded",
                {"drug_class": "G-CSF", "agent": "filgrastim", "start": date(start),
                 "end": None if end is None else date(end)}, 1)  # fmt: skip
        for loinc_and_lab in self._labs().values():
            if loinc_and_lab is not None:
                loinc, (value, unit, uln) = loinc_and_lab
                payload = {"loinc": loinc, "value": value, "unit": unit, "uln": uln}
                add("ScreeningLabResulted", payload, self.lab_day, self.lab_time)
        self._assessments(add)
        if self.eligible is not None:
            add("EligibilityConfirmed", {"investigator": "inv-1", "eligible": self.eligible}, ENROLLED,
                self.eligibility_time)  # fmt: skip
        if self.enroll:
            add("ParticipantEnrolled", {"arm": self.arm}, ENROLLED)
            if self.treat:
                self._treatment(add)
        return [*e, *(self._extra(x) for x in self.extra)]

    def _labs(self) -> dict[str, tuple[str, Lab] | None]:
        merged: dict[str, tuple[str, Lab] | None] = dict(LABS)
        for name, given in self.labs.items():
            if given is None or (isinstance(given[0], str) and len(given) == 2):
                merged[name] = given  # None, or a (LOINC, lab) pair
            else:
                loinc = LABS[name][0] if name in LABS else OTHER_LOINC[name]
                merged[name] = (loinc, given)  # a (value, unit, ULN) triple
        return merged

    def _assessments(self, add: Any) -> None:
        if self.sledai is not None:
            add("DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": self.sledai}, self.sledai_day)
        if self.eular is not None:
            add("SLEClassificationScored",
                {"criteria": "EULAR/ACR 2019", "ana_entry_met": self.eular[0], "score": self.eular[1]},
                LAB_DAY)  # fmt: skip
        if self.history is None or self.history:
            add("MedicalHistoryRecorded", {**HISTORY, **(self.history or {})}, LAB_DAY)
        if self.ecog is not None:
            add("PerformanceStatusAssessed", {"scale": "ECOG", "score": self.ecog}, self.sledai_day)

    def _treatment(self, add: Any) -> None:
        if self.leukapheresis_day is not None:
            add("LeukapheresisPerformed", None, self.leukapheresis_day)
        if self.lymphodepletion_day is not None:
            add("LymphodepletionAdministered", {"regimen": "fludarabine+cyclophosphamide"}, self.lymphodepletion_day)
        if self.infusion_day is not None:
            infusion = {"total_cells": self.total_cells, "weight_kg": self.weight_kg, "product_lot": "LOT-1"}
            add("CarTInfused", infusion, self.infusion_day)
            for code, day in {**VISIT_DAYS, **self.visits}.items():
                if day is not None:
                    add("FollowUpVisitCompleted", {"visit": code}, self.infusion_day + day, "11:30:00")

    def _extra(self, extra: Extra | ParticipantEvent) -> ParticipantEvent:
        if not isinstance(extra, Extra):
            return extra
        day = (self.infusion_day if self.infusion_day is not None else INFUSED) + extra.day
        when = at(day if extra.after_infusion else extra.day, extra.time)
        return event(extra.event_type, extra.payload, participant=self.pid, at=when)
