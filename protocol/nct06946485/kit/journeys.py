"""A participant's journey through NCT06946485 as contract-v1 events, for scenarios, tests and the
simulator.

``ParticipantJourney()`` with no changes is a clean participant: an adult woman of 35 at consent
(study day 0 = 2026-01-05), screened on day 3, confirmed and enrolled on day 10, infused on day
14 (no leukapheresis, no lymphodepletion: the record states neither). It raises nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contracts import ParticipantEvent
from protocol.kit import Extra, journey_event

DAY0 = dt.date(2026, 1, 5)
LAB_DAY = 3
ENROLLED = 10
INFUSED = 14
STUDY = "NCT06946485"
SITE = "NJ-01"

Lab = tuple[float | str, str | None, float | None]

LABS: dict[str, tuple[str, Lab]] = {
    "wbc": ("6690-2", (4.5, "10*9/L", None)),
    "neutrophils": ("751-8", (2.4, "10*9/L", None)),
    "hemoglobin": ("718-7", (112, "g/L", None)),
    "alt": ("1742-6", (25, "U/L", 40)),
    "ast": ("1920-8", (24, "U/L", 40)),
    "total_bilirubin": ("1975-2", (0.6, "mg/dL", 1.2)),
    "creatinine": ("2160-0", (0.7, "mg/dL", None)),
    "inr": ("6301-6", (1.0, "{INR}", 1.2)),
    "pt": ("5902-2", (12.0, "s", 13.5)),
    "lvef": ("10230-1", (62, "%", None)),
}
"""The screening results of a clean participant: analyte → (LOINC, (value, unit, ULN))."""

BILAG_DOMAINS = (
    "constitutional",
    "mucocutaneous",
    "neuropsychiatric",
    "musculoskeletal",
    "cardiorespiratory",
    "gastrointestinal",
    "ophthalmic",
    "renal",
    "haematological",
)

TREATMENTS: list[dict[str, Any]] = [
    {"agent": "prednisone", "start": "2025-01-10", "end": "2025-04-10", "dose": 1.0, "dose_unit": "mg/kg/d"},
    {"agent": "cyclophosphamide", "start": "2025-01-10", "end": "2025-06-10"},
    {"agent": "mycophenolate mofetil", "start": "2025-01-10", "end": "2025-11-30"},
]

HISTORY: dict[str, Any] = {
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
"""The medical history's flags (contract v1 requires them all; this protocol reads remission,
relapse and Gilbert's syndrome only)."""


def at(day: int, time: str = "10:30:00") -> str:
    """The event time of a study day (days from consent), in the site's offset."""
    return f"{(DAY0 + dt.timedelta(days=day)).isoformat()}T{time}+08:00"


def date(day: int) -> str:
    """The calendar date of a study day."""
    return (DAY0 + dt.timedelta(days=day)).isoformat()


def event(event_type: str, payload: Mapping[str, Any] | None, *, participant: str, when: str) -> ParticipantEvent:
    """A parsed contract-v1 event; its id is derived from its fields."""
    return journey_event(STUDY, event_type, payload, participant=participant, at=when, site=SITE)


@dataclass
class ParticipantJourney:
    """A participant's journey; ``events()`` gives it. Each field changes one clinical fact."""

    pid: str = "P-0001"
    birth_date: str = "1990-05-20"
    sex: str = "F"
    weight_kg: float = 60.0
    consent_day: int | None = 0
    eular: tuple[bool, int] | None = (True, 16)
    sledai: int | None = 10
    bilag: dict[str, str] | None = field(default_factory=lambda: {"renal": "A", "mucocutaneous": "B"})
    bilag_day: int = LAB_DAY
    labs: dict[str, Lab | None] = field(default_factory=dict)
    lab_day: int = LAB_DAY
    lab_time: str = "10:30:00"
    treatments: list[dict[str, Any]] = field(default_factory=lambda: [dict(t) for t in TREATMENTS])
    history: dict[str, Any] | None = None
    csf: tuple[str, int, int | None] | None = None
    eligible: bool | None = True
    enroll: bool = True
    arm: str = "cht101"
    treat: bool = True
    lymphodepletion_day: int | None = None
    infusion_day: int | None = INFUSED
    extra: list[Extra | ParticipantEvent] = field(default_factory=list)

    def events(self) -> list[ParticipantEvent]:
        """The participant's events in log order."""
        e: list[ParticipantEvent] = []

        def add(event_type: str, payload: dict[str, Any] | None, day: int, time: str = "10:30:00") -> None:
            e.append(event(event_type, payload, participant=self.pid, when=at(day, time)))

        add("ParticipantRegistered",
            {"birth_date": self.birth_date, "sex": self.sex, "height_cm": 165.0, "weight_kg": self.weight_kg},
            -7)  # fmt: skip
        if self.consent_day is not None:
            add("ConsentSigned", {"signer": "participant", "consent_version": "1.0"}, self.consent_day)
        if self.csf is not None:
            drug_class, start, end = self.csf
            add("ConcomitantMedicationRecorded",
                {"drug_class": drug_class, "agent": "filgrastim", "start": date(start),
                 "end": None if end is None else date(end)}, 1)  # fmt: skip
        for name, (loinc, default) in LABS.items():
            value = self.labs.get(name, default)
            if value is not None:
                add("ScreeningLabResulted", {"loinc": loinc, "value": value[0], "unit": value[1], "uln": value[2]},
                    self.lab_day, self.lab_time)  # fmt: skip
        if self.sledai is not None:
            add("DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": self.sledai}, LAB_DAY)
        if self.bilag is not None:
            grades = {d: self.bilag.get(d, "D") for d in BILAG_DOMAINS}
            add("BilagAssessed", {"version": "BILAG-2004", **grades}, self.bilag_day)
        if self.eular is not None:
            add("SLEClassificationScored",
                {"criteria": "EULAR/ACR 2019", "ana_entry_met": self.eular[0], "score": self.eular[1]},
                LAB_DAY)  # fmt: skip
        if self.history is None or self.history:
            add("MedicalHistoryRecorded",
                {"immunosuppressants": self.treatments, **HISTORY, **(self.history or {})}, LAB_DAY)  # fmt: skip
        if self.eligible is not None:
            add("EligibilityConfirmed", {"investigator": "inv-1", "eligible": self.eligible}, ENROLLED, "08:30:00")
        if self.enroll:
            add("ParticipantEnrolled", {"arm": self.arm}, ENROLLED)
            if self.treat:
                if self.lymphodepletion_day is not None:
                    add("LymphodepletionAdministered", {"regimen": "as prescribed"}, self.lymphodepletion_day)
                if self.infusion_day is not None:
                    add("CarTInfused", {"total_cells": 3e8, "weight_kg": self.weight_kg, "product_lot": "CHT-1"},
                        self.infusion_day)  # fmt: skip
        return [*e, *(self._extra(x) for x in self.extra)]

    def _extra(self, extra: Extra | ParticipantEvent) -> ParticipantEvent:
        if not isinstance(extra, Extra):
            return extra
        base = self.infusion_day if self.infusion_day is not None else INFUSED
        day = base + extra.day if extra.after_infusion else extra.day
        return event(extra.event_type, extra.payload, participant=self.pid, when=at(day, extra.time))
