"""Contract v1: lab results as events carry them — a result, its correction, its retraction.

For a LOINC code of the unit table (``contracts/units.py``), a value or a unit that cannot be
right breaks the contract, naming the field.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from contracts import units
from contracts.event_fields import LAB_MAX, LAB_MIN_NONZERO
from contracts.event_fields import Strict as _Strict

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
