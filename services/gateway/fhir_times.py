"""The times of a FHIR Observation as the contract needs them: ``occurred_at`` from
``effective[x]``, ``recorded_at`` from ``issued`` (or the gateway's receipt time). Pure.

- ``effectiveDateTime`` with a time has its offset (FHIR requires one); a date alone (US Core
  lab results are often written so) is read as 00:00 of that date in the source's registered
  time zone (``services.gateway.local_time.start_of_day``); a year or a year-month is refused.
- ``effectivePeriod``: the specimen was taken at its ``start`` (its ``end`` when it has none).
- ``effectiveInstant`` is an instant already.
- ``issued`` is optional in FHIR R4: without it, ``recorded_at`` is the time the gateway received
  the request, and the event's ``source.recorded_at_from`` says ``receipt``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fhir.resources.R4B.observation import Observation

from services.gateway.fhir_values import Problem
from services.gateway.local_time import LocalTimeError, start_of_day


def occurred_at(obs: Observation, path: str, zone: str | None, problems: list[Problem]) -> dt.datetime | None:
    """The specimen time of an Observation, aware, or None with a problem added."""
    if obs.effectiveDateTime is not None:
        return _point(obs.effectiveDateTime, f"{path}.effectiveDateTime", zone, problems)
    if obs.effectiveInstant is not None:
        return _point(obs.effectiveInstant, f"{path}.effectiveInstant", zone, problems)
    if (period := obs.effectivePeriod) is not None:
        if period.start is not None:
            return _point(period.start, f"{path}.effectivePeriod.start", zone, problems)
        if period.end is not None:
            return _point(period.end, f"{path}.effectivePeriod.end", zone, problems)
        problems.append(Problem(f"{path}.effectivePeriod", "a period without start or end", "required"))
        return None
    if obs.effectiveTiming is not None:
        problems.append(Problem(f"{path}.effectiveTiming", "a timing schedule is not a specimen time", "not-supported"))
        return None
    problems.append(
        Problem(f"{path}.effective[x]", "missing: effectiveDateTime, effectivePeriod or effectiveInstant", "required")
    )
    return None


def _point(value: Any, where: str, zone: str | None, problems: list[Problem]) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value  # FHIR requires an offset with a time, and fhir.resources checks it
    if isinstance(value, dt.date):
        try:
            return start_of_day(value, zone)
        except LocalTimeError as e:
            problems.append(Problem(where, f"{value.isoformat()} {e}", "required"))
            return None
    problems.append(Problem(where, f"{value!s:.40} is only a year or a month: a date is needed", "value"))
    return None


def recorded_at(obs: Observation, received_at: dt.datetime | None) -> tuple[dt.datetime | None, bool]:
    """When the lab issued the result, or the receipt time; and whether it is the receipt time."""
    if isinstance(obs.issued, dt.datetime):
        return obs.issued, False
    return received_at, received_at is not None
