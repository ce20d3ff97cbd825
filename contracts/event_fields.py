"""Contract v1: the field types every participant event is built of, and the strict base model.

Identifiers are pseudonymous and short; dates and times are bounded; magnitudes are bounded so
that every ratio the protocol takes stays a finite float. Shared by the events (``participant_events``)
and the lab results they carry (``lab_results``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.limits import EARLIEST_DATE, LATEST_DATE

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


class Strict(BaseModel):
    """Every contract model's base: unknown fields refused, frozen, no NaN, no coercion."""

    # strict: JSON true is not the number 1, "12" is not 12.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)
