"""The words NCT06946485's scenarios are written in: base journeys and the overrides a step says.

Days: "study day N" counts from consent (day 0 = 2026-01-05); "day N after infusion" from the
infusion (study day 14).
"""

from __future__ import annotations

import json
import re
from typing import Any

from protocol.kit import Extra
from protocol.nct06946485.kit.journeys import BILAG_DOMAINS, ParticipantJourney
from protocol.scenarios import Journey, Vocabulary

VOCABULARY = Vocabulary()

DAY = r"(?P<day>-?\d+)"
TIME = r"(?: at (?P<time>\d\d:\d\d))?"
WHEN = rf"on (?:study )?day {DAY}(?P<after> after infusion)?{TIME}"

LAB_NAMES = {
    "WBC": "wbc",
    "neutrophils": "neutrophils",
    "hemoglobin": "hemoglobin",
    "ALT": "alt",
    "AST": "ast",
    "total bilirubin": "total_bilirubin",
    "creatinine": "creatinine",
    "INR": "inr",
    "PT": "pt",
    "LVEF": "lvef",
}
_LAB = "|".join(re.escape(name) for name in sorted(LAB_NAMES, key=len, reverse=True))


def _j(journey: Journey) -> ParticipantJourney:
    assert isinstance(journey, ParticipantJourney)
    return journey


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() and "." not in text else value


def _time(text: str | None) -> str:
    return "15:00:00" if text is None else f"{text}:00"


def _extra(journey: Journey, event_type: str, payload: dict[str, Any] | None, day: str, time: str | None,
           after: str | None) -> None:  # fmt: skip
    _j(journey).extra.append(Extra(event_type, payload, int(day), _time(time), after_infusion=after is not None))


@VOCABULARY.journey("an eligible participant")
def eligible() -> Journey:
    """Consented, screened in range, confirmed eligible, enrolled, infused."""
    return ParticipantJourney()


@VOCABULARY.journey("an enrolled participant not yet treated")
def enrolled() -> Journey:
    """The eligible participant, enrolled; not infused yet."""
    return ParticipantJourney(treat=False)


@VOCABULARY.step(r"born on (?P<birth>\d{4}-\d\d-\d\d)")
def born(journey: Journey, birth: str) -> None:
    """The participant's birth date (consent is on 2026-01-05, the screening labs on 2026-01-08)."""
    _j(journey).birth_date = birth


@VOCABULARY.step(r"(?P<sex>a man|a woman) weighing (?P<weight>[\d.]+) kg")
def sex_and_weight(journey: Journey, sex: str, weight: str) -> None:
    """Sex and registration weight, for the Cockcroft-Gault creatinine clearance."""
    _j(journey).sex = "M" if sex == "a man" else "F"
    _j(journey).weight_kg = float(weight)


@VOCABULARY.step(r"consent never signed")
def no_consent(journey: Journey) -> None:
    """The participant never signs the informed consent."""
    _j(journey).consent_day = None


@VOCABULARY.step(rf"consent signed on study day {DAY}")
def consent_day(journey: Journey, day: str) -> None:
    """The day of the participant's signature (other events do not move)."""
    _j(journey).consent_day = int(day)


@VOCABULARY.step(r"EULAR/ACR 2019 score (?P<score>\d+)(?P<no_ana> without the ANA entry criterion)?")
def eular(journey: Journey, score: str, no_ana: str | None) -> None:
    """The EULAR/ACR 2019 classification score, and whether its ANA entry criterion was met."""
    _j(journey).eular = (no_ana is None, int(score))


@VOCABULARY.step(r"SLEDAI-2K (?P<score>\d+)")
def sledai(journey: Journey, score: str) -> None:
    """The SLEDAI-2K (SLEDAI-2000) score at screening."""
    _j(journey).sledai = int(score)


@VOCABULARY.step(r"no SLEDAI-2K")
def no_sledai(journey: Journey) -> None:
    """No SLEDAI-2K score."""
    _j(journey).sledai = None


@VOCABULARY.step(r"BILAG-2004 with (?P<a>\d) grade A and (?P<b>\d) grade B domains?")
def bilag(journey: Journey, a: str, b: str) -> None:
    """A BILAG-2004 assessment: the first domains graded A, the next B, the rest D."""
    grades = ["A"] * int(a) + ["B"] * int(b)
    _j(journey).bilag = dict(zip(BILAG_DOMAINS, grades, strict=False))


@VOCABULARY.step(rf"(?:the )?BILAG-2004 on study day {DAY}")
def bilag_day(journey: Journey, day: str) -> None:
    """The day of the BILAG-2004 assessment."""
    _j(journey).bilag_day = int(day)


@VOCABULARY.step(r"no BILAG-2004")
def no_bilag(journey: Journey) -> None:
    """No BILAG-2004 assessment."""
    _j(journey).bilag = None


@VOCABULARY.step(rf"(?P<lab>{_LAB}) (?P<value>[\d.]+)(?: (?P<unit>(?!with\b)\S+))?(?: with ULN (?P<uln>[\d.]+))?")
def lab(journey: Journey, lab: str, value: str, unit: str | None, uln: str | None) -> None:
    """A screening result: ``ALT 121 U/L with ULN 40``, ``LVEF 54 %``."""
    if unit is None and lab != "INR":
        raise ValueError(f"{lab} {value}: a number needs its unit")
    _j(journey).labs[LAB_NAMES[lab]] = (_number(value), unit, None if uln is None else _number(uln))


@VOCABULARY.step(rf"no (?P<lab>{_LAB}) result")
def no_lab(journey: Journey, lab: str) -> None:
    """A screening result left out."""
    _j(journey).labs[LAB_NAMES[lab]] = None


@VOCABULARY.step(rf"the screening labs on study day {DAY}{TIME}")
def lab_day(journey: Journey, day: str, time: str | None) -> None:
    """The day (and time) every screening result was taken."""
    _j(journey).lab_day = int(day)
    _j(journey).lab_time = "10:30:00" if time is None else f"{time}:00"


@VOCABULARY.step(r"(?P<no>no )?history of (?P<what>Gilbert syndrome|remission|relapse after remission)")
def history(journey: Journey, no: str | None, what: str) -> None:
    """A medical-history flag this protocol reads."""
    flag = {"Gilbert syndrome": "gilbert_syndrome", "remission": "remission_achieved"}.get(
        what, "relapse_after_remission"
    )
    j = _j(journey)
    j.history = {**(j.history or {}), flag: no is None}


@VOCABULARY.step(r"no medical history recorded")
def no_history(journey: Journey) -> None:
    """No medical history at all."""
    _j(journey).history = {}


@VOCABULARY.step(r"prior treatments:")
def treatments(journey: Journey, table: list[list[str]] | None = None) -> None:
    """The prior treatments: | agent | start | end | dose | unit | (dose and unit may be empty)."""
    header = ["agent", "start", "end", "dose", "unit"]
    if not table or [c.strip() for c in table[0]] != header:
        raise ValueError("prior treatments are a table with the header | agent | start | end | dose | unit |")
    rows: list[dict[str, Any]] = []
    for agent, start, end, dose, unit in ([c.strip() for c in r] for r in table[1:]):
        row: dict[str, Any] = {"agent": agent, "start": start, "end": end or None}
        if dose:
            row.update(dose=float(dose), dose_unit=unit)
        rows.append(row)
    _j(journey).treatments = rows


@VOCABULARY.step(r"(?P<cls>G-CSF|GM-CSF) from study day (?P<start>-?\d+)(?: to (?P<end>-?\d+)|, (?P<ongoing>ongoing))")
def csf(journey: Journey, cls: str, start: str, end: str | None, ongoing: str | None) -> None:
    """A colony-stimulating factor given from one study day to another, or ongoing."""
    _j(journey).csf = (cls, int(start), None if ongoing else int(end or 0))


@VOCABULARY.step(r"no eligibility confirmation")
def unconfirmed(journey: Journey) -> None:
    """The investigator never confirmed eligibility."""
    _j(journey).eligible = None


@VOCABULARY.step(rf"(?P<step>lymphodepletion|the infusion) on study day {DAY}")
def step_day(journey: Journey, step: str, day: str) -> None:
    """The study day of a treatment step."""
    setattr(_j(journey), "lymphodepletion_day" if step == "lymphodepletion" else "infusion_day", int(day))


@VOCABULARY.step(
    rf"(?:a(?P<serious> serious)|an) adverse event of CTCAE grade (?P<ctcae>\d)"
    r"(?: with (?P<what>CRS|ICANS|acute GVHD) grade (?P<grade>\d)"
    r"| with (?P<chronic>mild|moderate|severe) chronic GVHD)?"
    rf" {WHEN}"
)
def adverse_event(
    journey: Journey,
    serious: str | None,
    ctcae: str,
    what: str | None,
    grade: str | None,
    chronic: str | None,
    day: str,
    after: str | None,
    time: str | None,
) -> None:
    """An adverse event, e.g. ``a serious adverse event of CTCAE grade 3 with acute GVHD grade 2 on day 20
    after infusion``."""
    payload: dict[str, Any] = {"term": what or "adverse event", "ctcae_grade": int(ctcae), "serious": bool(serious)}
    if what is not None and grade is not None:
        payload[{"CRS": "crs_grade", "ICANS": "icans_grade", "acute GVHD": "gvhd_acute_grade"}[what]] = int(grade)
    if chronic is not None:
        payload["gvhd_chronic_severity"] = chronic
    _extra(journey, "AdverseEventReported", payload, day, time, after)


@VOCABULARY.step(rf"consent withdrawn {WHEN}")
def withdrawn(journey: Journey, day: str, after: str | None, time: str | None) -> None:
    """Consent withdrawn."""
    _extra(journey, "ConsentWithdrawn", {"reason": "personal decision"}, day, time, after)


@VOCABULARY.step(rf"a second CAR-T infusion {WHEN}")
def second_infusion(journey: Journey, day: str, after: str | None, time: str | None) -> None:
    """Another infusion."""
    payload = {"total_cells": 3e8, "weight_kg": 60.0, "product_lot": "CHT-2"}
    _extra(journey, "CarTInfused", payload, day, time, after)


@VOCABULARY.step(rf"(?P<event_type>[A-Z][A-Za-z]+) {WHEN}(?: with:)?")
def explicit(
    journey: Journey, event_type: str, day: str, after: str | None, time: str | None, doc: str | None = None
) -> None:
    """Any contract-v1 event, its payload as JSON in a doc string: ``LeukapheresisPerformed on study day 12``."""
    try:
        payload = json.loads(doc) if doc else None
    except json.JSONDecodeError as e:
        raise ValueError(f"the payload of {event_type} is not JSON: {e}") from None
    _extra(journey, event_type, payload, day, time, after)
