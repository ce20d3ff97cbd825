"""Contract v1: the participant events that upstream systems (lab, EDC, pharmacy) publish.

Every event is one UTF-8 JSON object: an envelope (ids, study, participant, event time) and a
payload whose shape depends on ``event_type``. ``ParticipantEvent`` is the discriminated union
of all of them. Impossible values (a negative weight, ECOG 7) break the contract; clinically bad
news (a low neutrophil count) does not: that is for the protocol to judge.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from contracts.event_fields import (
    Day,
    Grade,
    Identifier,
    Instant,
    Kilograms,
    Text,
)
from contracts.event_fields import Strict as _Strict
from contracts.lab_results import LabCorrection as LabCorrection  # re-exported: part of the events' contract
from contracts.lab_results import LabResult as LabResult
from contracts.lab_results import LabRetraction as LabRetraction

SCHEMA_VERSION = 1


class Source(_Strict):
    """Which upstream system recorded the event, and who (a pseudonymous actor id)."""

    system: Identifier
    actor: Identifier | None = None
    recorded_at_from: Literal["receipt"] | None = Field(
        default=None,
        description="'receipt' when the sender gave no record time (a FHIR Observation without issued, an OBX "
        "without OBX-19 and a message without MSH-7) and recorded_at is when the gateway received it",
    )


class _Envelope(_Strict):
    event_id: uuid.UUID
    schema_version: Literal[1]
    study_id: Identifier
    site_id: Identifier
    participant_id: Identifier
    occurred_at: Instant = Field(description="When it happened clinically; carries an offset.")
    recorded_at: Instant = Field(description="When the source system recorded it; carries an offset.")
    source: Source


class Empty(_Strict):
    """A payload with no fields."""


# --- payloads -------------------------------------------------------------------------------


class Registration(_Strict):
    birth_date: Day
    sex: Literal["F", "M"]
    height_cm: Annotated[float, Field(gt=30, lt=250)]
    weight_kg: Kilograms


class Consent(_Strict):
    signer: Literal["participant", "guardian"]
    consent_version: Annotated[str, Field(min_length=1, max_length=20)]


class Reason(_Strict):
    reason: Text


class KidneyBiopsy(_Strict):
    isn_rps_class: Annotated[str, Field(pattern=r"^(I|II|III|IV|V|VI)(\+V)?$")]
    active_lesions: bool


INSTRUMENT_SCORE_RANGES: dict[str, tuple[float, float, bool]] = {
    "SLEDAI-2K": (0, 105, True),
    "SELENA-SLEDAI": (0, 105, True),
    "PGA": (0, 3, False),
}
"""Each scored instrument's range and whether its score is a whole number: SLEDAI-2K (Gladman
2002) and SELENA-SLEDAI (Petri 2005) are integer sums of 0-105; the physician global assessment
(PGA) is a 0-3 visual analogue scale read to decimals (SRI-4: "an increase of <0.30 points")."""


class DiseaseActivity(_Strict):
    """A scored disease-activity instrument, by name and (optionally) the version the site used."""

    instrument: Literal["SLEDAI-2K", "SELENA-SLEDAI", "PGA"]
    score: Annotated[int, Field(ge=0, le=105)] | Annotated[float, Field(ge=0, le=105)]
    instrument_version: Annotated[str, Field(min_length=1, max_length=20)] | None = Field(
        default=None, description="the instrument's version or form as the site names it, e.g. '2K' or 'SRI-4 visit'"
    )

    @model_validator(mode="after")
    def _score_fits_the_instrument(self) -> DiseaseActivity:
        low, high, whole = INSTRUMENT_SCORE_RANGES[self.instrument]
        if whole and not isinstance(self.score, int):
            raise PydanticCustomError(
                "instrument_score", "a {instrument} score is a whole number", {"instrument": self.instrument}
            )
        if not low <= self.score <= high:
            raise PydanticCustomError(
                "instrument_score",
                "a {instrument} score is within {low}..{high}",
                {"instrument": self.instrument, "low": low, "high": high},
            )
        return self


BilagGrade = Literal["A", "B", "C", "D", "E"]
"""A BILAG-2004 organ-domain grade: A most active, E never involved (Isenberg 2005)."""


class Bilag(_Strict):
    """A BILAG-2004 assessment: the grade of each of its nine organ domains."""

    version: Literal["BILAG-2004"]
    constitutional: BilagGrade
    mucocutaneous: BilagGrade
    neuropsychiatric: BilagGrade
    musculoskeletal: BilagGrade
    cardiorespiratory: BilagGrade
    gastrointestinal: BilagGrade
    ophthalmic: BilagGrade
    renal: BilagGrade
    haematological: BilagGrade


class SLEClassification(_Strict):
    criteria: Literal["EULAR/ACR 2019"]
    ana_entry_met: bool
    score: Annotated[int, Field(ge=0, le=51)]
    items: list[Annotated[str, Field(min_length=1, max_length=80)]] | None = None


AtcCode = Annotated[
    str,
    Field(
        pattern=r"^[A-Z](\d\d([A-Z]([A-Z](\d\d)?)?)?)?$",
        description="WHO ATC code at any level, e.g. L03AA (colony stimulating factors) or L03AA02 (filgrastim)",
    ),
]
DoseAmount = Annotated[float, Field(gt=0, le=1e6, description="the dose, in dose_unit")]
DoseUnit = Annotated[
    str, Field(min_length=1, max_length=30, description="UCUM unit of the dose, e.g. mg, mg/d, mg/kg/d, ug/kg")
]


def _dose_with_unit(dose: float | None, unit: str | None) -> None:
    if (dose is None) != (unit is None):
        raise PydanticCustomError("dose_unit", "dose and dose_unit are given together or not at all", {})


class Treatment(_Strict):
    agent: Annotated[str, Field(min_length=1, max_length=80)]
    start: Day
    end: Day | None = None
    atc_code: AtcCode | None = None
    dose: DoseAmount | None = None
    dose_unit: DoseUnit | None = None

    @model_validator(mode="after")
    def _dose_has_a_unit(self) -> Treatment:
        _dose_with_unit(self.dose, self.dose_unit)
        return self


class MedicalHistory(_Strict):
    immunosuppressants: list[Treatment]
    remission_achieved: bool
    relapse_after_remission: bool
    proteinuria_in_remission: bool
    prior_car_t: bool
    kidney_transplant: bool
    malignancy_within_5y: bool
    other_trial_within_3m: bool
    congenital_ig_deficiency: bool
    serious_drug_allergy: bool
    uncontrolled_infection: bool
    severe_organ_dysfunction: bool
    severe_cns_or_psychiatric: bool
    gilbert_syndrome: bool


class ConcomitantMedication(_Strict):
    drug_class: Annotated[str, Field(min_length=1, max_length=40)]
    agent: Annotated[str, Field(min_length=1, max_length=80)]
    start: Day
    end: Day | None = None
    atc_code: AtcCode | None = None
    dose: DoseAmount | None = None
    dose_unit: DoseUnit | None = None

    @model_validator(mode="after")
    def _dose_has_a_unit(self) -> ConcomitantMedication:
        _dose_with_unit(self.dose, self.dose_unit)
        return self


class PerformanceStatus(_Strict):
    scale: Literal["ECOG"]
    score: Annotated[int, Field(ge=0, le=5)]


class Eligibility(_Strict):
    investigator: Identifier
    eligible: bool


class Enrollment(_Strict):
    arm: Identifier = Field(
        description="an arm the study's protocol declares (NCT06904729: low_dose, high_dose); another is refused "
        "by the rules service as a contract error (dead letter)"
    )


class Lymphodepletion(_Strict):
    regimen: Annotated[str, Field(min_length=1, max_length=80)]


class Infusion(_Strict):
    total_cells: Annotated[float, Field(gt=0, le=1e12, description="cells infused (a dose is about 1e7-1e8)")]
    weight_kg: Kilograms
    product_lot: Identifier


class AdverseEvent(_Strict):
    term: Text
    ctcae_grade: Grade
    serious: bool
    crs_grade: Grade | None = Field(default=None, description="ASTCT CRS grade")
    icans_grade: Grade | None = Field(default=None, description="ASTCT ICANS grade")
    gvhd_acute_grade: Annotated[int, Field(ge=1, le=4)] | None = Field(
        default=None, description="acute GVHD overall grade I-IV (MAGIC 2016) as 1-4"
    )
    gvhd_chronic_severity: Literal["mild", "moderate", "severe"] | None = Field(
        default=None, description="chronic GVHD global severity (NIH 2014 consensus, as the NCCN HCT guidelines use)"
    )


class Visit(_Strict):
    visit: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{0,9}$", description="a visit code of the schedule, e.g. D7")]


class Relapse(_Strict):
    description: Text
    upcr_mg_mg: Annotated[float, Field(ge=0, le=100, description="urine protein/creatinine in mg/mg")] | None = None


# --- events ---------------------------------------------------------------------------------


class ParticipantRegistered(_Envelope):
    event_type: Literal["ParticipantRegistered"]
    payload: Registration


class ConsentSigned(_Envelope):
    event_type: Literal["ConsentSigned"]
    payload: Consent


class ConsentWithdrawn(_Envelope):
    event_type: Literal["ConsentWithdrawn"]
    payload: Reason


class ScreeningLabResulted(_Envelope):
    event_type: Literal["ScreeningLabResulted"]
    payload: LabResult


class LabResultCorrected(_Envelope):
    """A lab corrects a result it reported: the correction supersedes it, nothing is edited."""

    event_type: Literal["LabResultCorrected"]
    payload: LabCorrection


class LabResultRetracted(_Envelope):
    """A lab retracts a result it reported."""

    event_type: Literal["LabResultRetracted"]
    payload: LabRetraction


class KidneyBiopsyReported(_Envelope):
    event_type: Literal["KidneyBiopsyReported"]
    payload: KidneyBiopsy


class DiseaseActivityScored(_Envelope):
    event_type: Literal["DiseaseActivityScored"]
    payload: DiseaseActivity


class SLEClassificationScored(_Envelope):
    event_type: Literal["SLEClassificationScored"]
    payload: SLEClassification


class MedicalHistoryRecorded(_Envelope):
    event_type: Literal["MedicalHistoryRecorded"]
    payload: MedicalHistory


class ConcomitantMedicationRecorded(_Envelope):
    event_type: Literal["ConcomitantMedicationRecorded"]
    payload: ConcomitantMedication


class PerformanceStatusAssessed(_Envelope):
    event_type: Literal["PerformanceStatusAssessed"]
    payload: PerformanceStatus


class EligibilityConfirmed(_Envelope):
    event_type: Literal["EligibilityConfirmed"]
    payload: Eligibility


class BilagAssessed(_Envelope):
    event_type: Literal["BilagAssessed"]
    payload: Bilag


class ParticipantEnrolled(_Envelope):
    event_type: Literal["ParticipantEnrolled"]
    payload: Enrollment


class LeukapheresisPerformed(_Envelope):
    event_type: Literal["LeukapheresisPerformed"]
    payload: Empty = Empty()


class LymphodepletionAdministered(_Envelope):
    event_type: Literal["LymphodepletionAdministered"]
    payload: Lymphodepletion


class CarTInfused(_Envelope):
    event_type: Literal["CarTInfused"]
    payload: Infusion


class AdverseEventReported(_Envelope):
    event_type: Literal["AdverseEventReported"]
    payload: AdverseEvent


class FollowUpVisitCompleted(_Envelope):
    event_type: Literal["FollowUpVisitCompleted"]
    payload: Visit


class RelapseReported(_Envelope):
    event_type: Literal["RelapseReported"]
    payload: Relapse


class ParticipantWithdrawn(_Envelope):
    event_type: Literal["ParticipantWithdrawn"]
    payload: Reason


class ClockTicked(_Envelope):
    """A watermark: event time has reached ``occurred_at`` for this participant."""

    event_type: Literal["ClockTicked"]
    payload: Empty = Empty()


ParticipantEvent = Annotated[
    ParticipantRegistered
    | ConsentSigned
    | ConsentWithdrawn
    | ScreeningLabResulted
    | LabResultCorrected
    | LabResultRetracted
    | KidneyBiopsyReported
    | DiseaseActivityScored
    | SLEClassificationScored
    | BilagAssessed
    | MedicalHistoryRecorded
    | ConcomitantMedicationRecorded
    | PerformanceStatusAssessed
    | EligibilityConfirmed
    | ParticipantEnrolled
    | LeukapheresisPerformed
    | LymphodepletionAdministered
    | CarTInfused
    | AdverseEventReported
    | FollowUpVisitCompleted
    | RelapseReported
    | ParticipantWithdrawn
    | ClockTicked,
    Field(discriminator="event_type"),
]
"""Any contract-v1 participant event, told apart by ``event_type``."""
