"""What an event says, in a few words with units: for the participant's events table and the
timeline's tooltips ("WBC 1.62 10*9/L", "CTCAE grade 3, CRS grade 3, serious").

Never a birth date, and no free text: a reason, a description or an AE term is the site's own
writing and stays in the event's full record (the finding page shows it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts.units import analyte_for

FREE_TEXT = frozenset({"reason", "description", "term", "birth_date", "items", "immunosuppressants"})
UNITS = {
    "height_cm": ("height", "cm"),
    "weight_kg": ("weight", "kg"),
    "upcr_mg_mg": ("UPCR", "mg/mg"),
    "total_cells": ("total cells", ""),
}
"""Field -> (words, unit) for the fields whose name carries their unit."""


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _measured(value: Any, unit: Any, comparator: Any = None) -> str:
    text = f"{comparator or ''}{_number(value)}"
    return f"{text} {unit}" if unit else text


def _lab(p: dict[str, Any]) -> str:
    analyte = analyte_for(str(p.get("loinc", "")))
    name = analyte.name if analyte else f"LOINC {p.get('loinc', '')}"
    text = f"{name} {_measured(p.get('value'), p.get('unit'), p.get('comparator'))}"
    limits = [f"{word} {_number(p[key])}" for key, word in (("lln", "LLN"), ("uln", "ULN")) if p.get(key) is not None]
    return text + (f" ({', '.join(limits)})" if limits else "")


def _adverse_event(p: dict[str, Any]) -> str:
    grades = [f"CTCAE grade {p.get('ctcae_grade')}"]
    grades += [f"{word} grade {p[key]}" for key, word in (("crs_grade", "CRS"), ("icans_grade", "ICANS")) if p.get(key)]
    if p.get("gvhd_acute_grade"):
        grades.append(f"acute GVHD grade {p['gvhd_acute_grade']}")
    if p.get("gvhd_chronic_severity"):
        grades.append(f"chronic GVHD {p['gvhd_chronic_severity']}")
    return ", ".join(grades) + (", serious" if p.get("serious") else "")


def _medication(p: dict[str, Any]) -> str:
    dose = f" {_measured(p['dose'], p.get('dose_unit'))}" if p.get("dose") is not None else ""
    return f"{p.get('agent', '')}{dose} from {p.get('start', '')}" + (f" to {p['end']}" if p.get("end") else "")


_FORMATS: dict[str, Callable[[dict[str, Any]], str]] = {
    "ScreeningLabResulted": _lab,
    "LabResultCorrected": lambda p: f"corrected to {_measured(p.get('value'), p.get('unit'))}",
    "LabResultRetracted": lambda p: "result retracted",
    "AdverseEventReported": _adverse_event,
    "ConsentSigned": lambda p: f"signed by the {p.get('signer', '')}, consent version {p.get('consent_version', '')}",
    "EligibilityConfirmed": lambda p: "eligible" if p.get("eligible") else "not eligible",
    "ParticipantEnrolled": lambda p: f"arm {p.get('arm', '')}",
    "FollowUpVisitCompleted": lambda p: f"visit {p.get('visit', '')}",
    "KidneyBiopsyReported": lambda p: (
        f"ISN/RPS class {p.get('isn_rps_class', '')}"
        + (", active lesions" if p.get("active_lesions") else ", no active lesions")
    ),
    "DiseaseActivityScored": lambda p: f"{p.get('instrument', '')} {_number(p.get('score'))}",
    "PerformanceStatusAssessed": lambda p: f"{p.get('scale', '')} {p.get('score')}",
    "ConcomitantMedicationRecorded": _medication,
    "CarTInfused": lambda p: (
        f"{p.get('total_cells', 0):.3g} cells, weight {_number(p.get('weight_kg'))} kg, lot {p.get('product_lot', '')}"
    ),
}


def event_values(event_type: str, payload: dict[str, Any]) -> str:
    """The event's values with their units, in a few words; '' when it carries none to show.

    Args:
        event_type: the event's type (``ScreeningLabResulted``, ...).
        payload: the event's payload as JSON data.
    """
    shape = _FORMATS.get(event_type)
    if shape is not None:
        try:
            return shape(payload)
        except (KeyError, TypeError, ValueError):  # a payload of another shape: fall back to its fields
            pass
    parts = []
    for key, value in payload.items():
        if key in FREE_TEXT or isinstance(value, dict | list) or value is None:
            continue
        shown = "yes" if value is True else "no" if value is False else _number(value)
        name, unit = UNITS.get(key, (key.replace("_", " "), ""))
        parts.append(f"{name} {shown} {unit}".rstrip())
    return ", ".join(parts)
