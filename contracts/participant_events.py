"""Contract v1: the participant events that upstream systems (lab, EDC, pharmacy) publish.

Every event is one UTF-8 JSON object: an envelope (ids, study, participant, event time) and a
payload whose shape depends on ``event_type``. ``ParticipantEvent`` is the discriminated union
of all of them. Impossible values (a negative weight, ECOG 7) break the contract; clinically bad
news (a low neutrophil count) does not: that is for the protocol to judge.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts import units
from contracts.limits import EARLIEST_DATE, LATEST_DATE

SCHEMA_VERSION = 1

# Pseudonymous ids only: short, no spaces, nothing that reads like a name.
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Grade = Annotated[int, Field(ge=1, le=5)]


# Dates and event times within 1900-01-01..2100-12-31 (an event time in UTC). Native constraints,
# checked in Rust: the two timestamps of every event are on the hot path.
_DATE_RANGE = {"formatMinimum": EARLIEST_DATE.isoformat(), "formatMaximum": LATEST_DATE.isoformat()}
_FIRST_INSTANT = dt.datetime.combine(EARLIEST_DATE, dt.time(), dt.UTC)
_LAST_INSTANT = dt.datetime.combine(LATEST_DATE, dt.time.max, dt.UTC)
_INSTANT_RANGE = {"formatMinimum": "1900-01-01T00:00:00Z", "formatMaximum": "2100-12-31T23:59:59.999999Z"}
Day = Annotated[dt.date, Field(ge=EARLIEST_DATE, le=LATEST_DATE, json_schema_extra=_DATE_RANGE)]
"""A calendar date between 1900-01-01 and 2100-12-31."""
Instant = Annotated[AwareDatetime, Field(ge=_FIRST_INSTANT, le=_LAST_INSTANT, json_schema_extra=_INSTANT_RANGE)]
"""A timestamp with a UTC offset, between 1900-01-01T00:00:00Z and 2100-12-31T23:59:59.999999Z."""

# Magnitudes: a lab reports nothing beyond 1e12 in any unit (viral loads reach about 1e10
# copies/mL), and nothing but zero below 1e-12; together they keep every ratio the protocol takes
# (value ÷ ULN, height ÷ creatinine) a finite float.
LAB_MAX = 1e12
LAB_MIN_NONZERO = 1e-12
Kilograms = Annotated[float, Field(ge=0.2, lt=300, description="body weight in kg")]
"""A body weight: from the lightest newborn that survives to beyond any patient."""


class _Strict(BaseModel):
    # strict: JSON true is not the number 1, "12" is not 12.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


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


LabValue = (
    Annotated[float, Field(ge=-LAB_MAX, le=LAB_MAX)]
    | Annotated[
        str,
        Field(
            pattern=r"^(positive|negative|equivocal|1:[1-9]\d{0,5})$",
            description="a titre such as 1:160, or a qualitative result",
        ),
    ]
)
Comparator = Literal["<", "<=", ">=", ">"]
"""How a numeric lab value relates to the true result when it is a bound (``>1000``, ``<0.5``)."""
LabUnit = Annotated[str, Field(min_length=1, max_length=30, description="UCUM unit")]
LabUln = Annotated[float, Field(ge=LAB_MIN_NONZERO, le=LAB_MAX)]


def _measurable(value: float | str, loinc: str | None) -> float | str:
    """A number other than 0 is at least LAB_MIN_NONZERO in magnitude; with a LOINC code of the
    unit table, the value is of the analyte's kind."""
    if isinstance(value, float) and value != 0 and abs(value) < LAB_MIN_NONZERO:
        raise PydanticCustomError(
            "not_measurable",
            "a number other than 0 must be at least {least} in magnitude",
            {"least": LAB_MIN_NONZERO},
        )
    if loinc is not None:
        try:
            units.check_value(loinc, value)
        except units.ResultKindError as e:
            raise PydanticCustomError("lab_result_kind", "{reason}", {"reason": str(e)}) from None
    return value


class LabResult(_Strict):
    loinc: Annotated[str, Field(pattern=r"^\d{1,7}-\d$", description="LOINC code, e.g. 751-8")]
    value: LabValue
    unit: LabUnit | None = None
    uln: LabUln | None = None
    lln: Annotated[float, Field(ge=0, le=LAB_MAX)] | None = None
    comparator: Comparator | None = Field(
        default=None,
        description="the result is beyond the value rather than equal to it: '<' 0.5 is below 0.5 (under the "
        "assay's limit of detection), '>' 1000 above 1000 (HL7 v2 SN comparator, FHIR valueQuantity.comparator); "
        "only with a numeric value",
    )

    # For a LOINC code of the unit table (contracts/units.py), a value or a unit that cannot be
    # right breaks the contract, naming the field; other LOINC codes are not restricted but for
    # the magnitude of a number (one validator: it runs for half of all events).
    @field_validator("value")
    @classmethod
    def _value_fits_the_analyte(cls, value: float | str, info: ValidationInfo) -> float | str:
        return _measurable(value, info.data.get("loinc"))

    @field_validator("unit")
    @classmethod
    def _unit_known_for_the_analyte(cls, unit: str | None, info: ValidationInfo) -> str | None:
        if (loinc := info.data.get("loinc")) is not None and "value" in info.data:
            _check_unit(loinc, info.data["value"], unit)
        return unit

    @model_validator(mode="after")
    def _unit_present_when_needed(self) -> LabResult:
        # A field validator does not see an omitted unit (the default is not validated).
        if "unit" not in self.model_fields_set:
            _check_unit(self.loinc, self.value, None)
        return self

    @model_validator(mode="after")
    def _comparator_of_a_number(self) -> LabResult:
        if self.comparator is not None and not isinstance(self.value, float):
            raise PydanticCustomError("comparator_without_number", "a comparator qualifies a numeric value only")
        return self


class LabCorrection(_Strict):
    """A corrected result: it replaces the value, unit and ULN of the result it names (the LOINC
    code and the specimen time stay the corrected result's). The same constraints as a result: the
    magnitude here; the value's kind and the unit for the analyte where the correction is applied
    (events.fold.corrected_lab), since only the corrected result knows its LOINC code."""

    corrected_event_id: uuid.UUID = Field(description="event_id of the ScreeningLabResulted corrected")
    value: LabValue
    unit: LabUnit | None = None
    uln: LabUln | None = None

    @field_validator("value")
    @classmethod
    def _value_measurable(cls, value: float | str) -> float | str:
        return _measurable(value, None)


class LabRetraction(_Strict):
    """A result withdrawn by the lab: as if it had never been reported."""

    retracted_event_id: uuid.UUID = Field(description="event_id of the ScreeningLabResulted retracted")


def _check_unit(loinc: str, value: float | str, unit: str | None) -> None:
    try:
        units.check_unit(loinc, value, unit)
    except units.UnknownUnitError as e:
        raise PydanticCustomError("lab_unit_unknown", "{reason}", {"reason": str(e)}) from None


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
