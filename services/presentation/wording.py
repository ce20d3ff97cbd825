"""Names and values for people: a fact or field name as words, a unit as printed, a value as read.

The fact names a protocol package derives (``alt_uln_multiple``, ``gcsf_within_14_days_of_neutrophils``)
and the field names of a finding (``ruleset_fingerprint``) are keys, not words. ``label`` turns any
of them into words, word by word, with the clinical abbreviations spelled as clinicians write them;
a few whole names read better said differently and are listed in ``LABELS``. A new protocol's facts
get readable labels without an entry here.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Final

LABELS: Final = {
    "age_at_consent": "Age at consent",
    "signed": "Signed by",
    "egfr_schwartz": "eGFR (bedside Schwartz)",
    "crcl_cockcroft_gault": "Creatinine clearance (Cockcroft-Gault)",
    "gcsf_within_14_days_of_neutrophils": "G-CSF within 14 days before the neutrophil sample",
    "csf_within_2_weeks_of_neutrophils": "Colony-stimulating factor within 2 weeks before the neutrophil sample",
    "biopsy_active_class_iii_or_iv": "Active class III or IV lupus nephritis on biopsy",
    "malignancy_within_5y": "Malignancy within 5 years",
    "other_trial_within_3m": "Another trial within 3 months",
    "upcr_mg_mg": "Urine protein/creatinine (mg/mg)",
    "missing_or_outdated": "Screening assessments missing or outdated",
    "ruleset_fingerprint": "Ruleset fingerprint",
    "deviation_id": "Finding id",
    "alert_id": "Finding id",
    "trigger_event_ids": "Trigger events",
    "protocol_reference": "Protocol reference",
    "occurred_at": "Event time",
    "event_type": "Kind of record",
    "schema_version": "Record format version",
    "study_id": "Study",
    "site_id": "Site",
    "participant_id": "Participant",
    "rule_id": "Rule",
    "term": "Term",
    "category": "Category",
    "severity": "Severity",
    "protocol_version": "Protocol version",
}
"""Whole names that read better said otherwise than word by word."""

_WORDS: Final = {
    "wbc": "WBC",
    "alt": "ALT",
    "ast": "AST",
    "uln": "ULN",
    "crs": "CRS",
    "icans": "ICANS",
    "cd19": "CD19",
    "ana": "ANA",
    "ecog": "ECOG",
    "egfr": "eGFR",
    "inr": "INR",
    "pt": "PT",
    "sledai": "SLEDAI",
    "2k": "2K",
    "gvhd": "GVHD",
    "ctcae": "CTCAE",
    "hbsag": "HBsAg",
    "hbc": "HBc",
    "hbv": "HBV",
    "hcv": "HCV",
    "hiv": "HIV",
    "dna": "DNA",
    "rna": "RNA",
    "csf": "CSF",
    "gcsf": "G-CSF",
    "bilag": "BILAG",
    "lvef": "LVEF",
    "spo2": "SpO2",
    "upcr": "UPCR",
    "cns": "CNS",
    "ig": "Ig",
    "eular": "EULAR",
    "acr": "ACR",
    "iii": "III",
    "iv": "IV",
    "ln": "LN",
    "car": "CAR",
    "t": "T",
    "mg": "mg",
    "kg": "kg",
    "crcl": "CrCl",
    "id": "id",
}
"""Words of a name spelled as clinicians write them."""

_SUFFIXES: Final = (("_uln_multiple", " (× ULN)"), ("_mg_per_kg_day", " (mg/kg/day)"))

UNITS: Final = {
    "10*9/L": "×10⁹/L",
    "10*12/L": "×10¹²/L",
    "x ULN": "× ULN",
    "mL/min/1.73m2": "mL/min/1.73 m²",
    "{INR}": "",
    "{copies}/mL": "copies/mL",
    "[IU]/mL": "IU/mL",
}
"""UCUM units as they are printed on a lab report."""


COUNTED: Final = frozenset({"points", "grade", "decimals", "agents", "domains", "fraction of target"})
"""Units a number reads better without (a score, a grade, a count)."""


def label(name: str) -> str:
    """A fact or field name in words: ``alt_uln_multiple`` → ``ALT (× ULN)``."""
    if name in LABELS:
        return LABELS[name]
    tail = ""
    for suffix, said in _SUFFIXES:
        if name.endswith(suffix):
            name, tail = name[: -len(suffix)], said
            break
    words = [_WORDS.get(word, word) for word in name.split("_") if word]
    if not words:
        return name
    first = words[0]
    words[0] = first[:1].upper() + first[1:] if first.islower() else first
    return " ".join(words) + tail


def unit_text(unit: str) -> str:
    """A unit as printed (``10*9/L`` → ``×10⁹/L``); empty for none."""
    return UNITS.get(unit, unit)


def with_unit(value: Any, unit: str) -> str:
    """A value and its unit as read: ``1.62 ×10⁹/L``, ``3.0 × ULN``, a titre ``1:40``."""
    if unit == "dilution" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"1:{value:g}"
    shown, printed = value_text(value), unit_text(unit)
    if not printed or unit in COUNTED:
        return shown
    return f"{shown} {printed}"


_CAMEL = re.compile(r"^(?:[A-Z][a-z]+){2,}$")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def value_text(value: Any) -> str:
    """A value as read: yes/no, "none" for an empty list, a list joined, a time without seconds."""
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "not recorded"
    if isinstance(value, list | tuple):
        return ", ".join(value_text(item) for item in value) if value else "none"
    if isinstance(value, dict):
        return "; ".join(f"{label(str(k))}: {value_text(v)}" for k, v in value.items()) or "none"
    if isinstance(value, float):
        return repr(value) if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, str) and _CAMEL.match(value):  # an event type: ScreeningLabResulted
        words = re.findall(r"[A-Z][a-z]*", value)
        return " ".join([words[0], *(w.lower() if len(w) > 1 else w for w in words[1:])])
    if isinstance(value, str) and _ISO_TIME.match(value):
        try:
            return dt.datetime.fromisoformat(value).isoformat(sep=" ", timespec="minutes")
        except ValueError:
            return value
    return str(value)
