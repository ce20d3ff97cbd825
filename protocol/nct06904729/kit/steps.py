"""The words NCT06904729's scenarios are written in: base journeys and the overrides a step says.

Days: "study day N" counts from consent (day 0); "day N after infusion" from the infusion.
Every step changes one clinical fact of the clean journey (see ``journeys``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from protocol.kit import Extra
from protocol.nct06904729.kit.journeys import LABS, OTHER_LOINC, ParticipantJourney
from protocol.scenarios import Journey, Vocabulary

VOCABULARY = Vocabulary()

DAY = r"(?P<day>-?\d+)"
TIME = r"(?: at (?P<time>\d\d:\d\d))?"

LAB_NAMES = {
    "lymphocytes": "lymphocytes",
    "WBC": "wbc",
    "neutrophils": "neutrophils",
    "hemoglobin": "hemoglobin",
    "ALT": "alt",
    "AST": "ast",
    "total bilirubin": "total_bilirubin",
    "creatinine": "creatinine",
    "INR": "inr",
    "PT": "pt",
    "ANA": "ana",
    "CD19": "cd19",
    "HBsAg": "hbsag",
    "anti-HBc": "anti_hbc",
    "anti-HCV": "anti_hcv",
    "HIV": "hiv",
    "syphilis": "syphilis",
    "HBV DNA": "hbv_dna",
    "HCV RNA": "hcv_rna",
}
"""Screening labs by the name a scenario gives them."""
_LAB = "|".join(re.escape(name) for name in sorted(LAB_NAMES, key=len, reverse=True))

CONDITIONS = {
    "kidney transplant": "kidney_transplant",
    "serious drug allergy": "serious_drug_allergy",
    "uncontrolled infection": "uncontrolled_infection",
    "severe organ dysfunction": "severe_organ_dysfunction",
    "congenital immunoglobulin deficiency": "congenital_ig_deficiency",
    "malignancy in the last five years": "malignancy_within_5y",
    "severe CNS disease or mental illness": "severe_cns_or_psychiatric",
    "another clinical trial within 3 months": "other_trial_within_3m",
    "previous CAR-T therapy": "prior_car_t",
    "Gilbert syndrome": "gilbert_syndrome",
    "remission": "remission_achieved",
    "relapse after remission": "relapse_after_remission",
    "proteinuria in remission": "proteinuria_in_remission",
}
"""Medical-history flags by the words a scenario says them in."""
_CONDITION = "|".join(re.escape(name) for name in sorted(CONDITIONS, key=len, reverse=True))


def _time(text: str | None, default: str = "15:00:00") -> str:
    return default if text is None else f"{text}:00"


def _number(text: str) -> float | int:
    value = float(text.replace(",", ""))
    return int(value) if value.is_integer() and "." not in text else value


def _j(journey: Journey) -> ParticipantJourney:
    assert isinstance(journey, ParticipantJourney)
    return journey


@VOCABULARY.journey("an eligible participant")
def eligible() -> Journey:
    """Consented, screened in range, confirmed eligible, enrolled, treated, every visit in its window."""
    return ParticipantJourney()


@VOCABULARY.journey("a screened participant not enrolled")
def screened() -> Journey:
    """The eligible participant, screened and confirmed but never enrolled."""
    return ParticipantJourney(enroll=False)


@VOCABULARY.journey("an enrolled participant not yet treated")
def enrolled() -> Journey:
    """The eligible participant, enrolled; no leukapheresis, lymphodepletion or infusion yet."""
    return ParticipantJourney(treat=False)


@VOCABULARY.step(r"born on (?P<birth>\d{4}-\d\d-\d\d)")
def born(journey: Journey, birth: str) -> None:
    """The participant's birth date (consent is on 2025-11-03)."""
    _j(journey).birth_date = birth


@VOCABULARY.step(r"(?P<height>\d+(?:\.\d+)?) cm tall")
def height(journey: Journey, height: str) -> None:
    """The participant's height, for the Schwartz eGFR."""
    _j(journey).height_cm = float(height)


@VOCABULARY.step(r"consent signed by (?P<who>the participant only|the participant and the guardian|nobody)")
def signers(journey: Journey, who: str) -> None:
    """Who signed the informed consent."""
    _j(journey).signers = {"nobody": (), "the participant only": ("participant",)}.get(who, ("participant", "guardian"))


@VOCABULARY.step(rf"consent signed on study day {DAY}")
def consent_day(journey: Journey, day: str) -> None:
    """The day of the consent signatures (the study days of other events do not move)."""
    _j(journey).consent_day = int(day)


@VOCABULARY.step(r"a class (?P<cls>[IVX+]+) kidney biopsy (?P<active>with|without) active lesions")
def biopsy(journey: Journey, cls: str, active: str) -> None:
    """The ISN/RPS class of the kidney biopsy and whether it shows active lesions."""
    _j(journey).biopsy = (cls, active == "with")


@VOCABULARY.step(rf"the kidney biopsy on study day {DAY}")
def biopsy_day(journey: Journey, day: str) -> None:
    """The day of the kidney biopsy."""
    _j(journey).biopsy_day = int(day)


@VOCABULARY.step(r"EULAR/ACR 2019 score (?P<score>\d+)(?P<no_ana> without the ANA entry criterion)?")
def eular(journey: Journey, score: str, no_ana: str | None) -> None:
    """The EULAR/ACR 2019 SLE classification score, and whether its ANA entry criterion was met."""
    _j(journey).eular = (no_ana is None, int(score))


@VOCABULARY.step(r"no EULAR/ACR 2019 classification")
def no_eular(journey: Journey) -> None:
    """No SLE classification recorded."""
    _j(journey).eular = None


@VOCABULARY.step(r"SLEDAI-2K (?P<score>\d+)")
def sledai(journey: Journey, score: str) -> None:
    """The SLEDAI-2K score at screening."""
    _j(journey).sledai = int(score)


@VOCABULARY.step(r"no SLEDAI-2K")
def no_sledai(journey: Journey) -> None:
    """No SLEDAI-2K score."""
    _j(journey).sledai = None


@VOCABULARY.step(rf"SLEDAI-2K and ECOG on study day {DAY}")
def sledai_day(journey: Journey, day: str) -> None:
    """The day of the SLEDAI-2K score and the ECOG status."""
    _j(journey).sledai_day = int(day)


@VOCABULARY.step(r"ECOG (?P<score>\d)")
def ecog(journey: Journey, score: str) -> None:
    """The ECOG performance status at screening."""
    _j(journey).ecog = int(score)


@VOCABULARY.step(r"no ECOG")
def no_ecog(journey: Journey) -> None:
    """No ECOG performance status."""
    _j(journey).ecog = None


@VOCABULARY.step(
    rf"(?P<lab>{_LAB}) (?P<value>-?[\d.,]+|1:\d+|positive|negative|equivocal)(?: (?P<unit>(?!with\b)\S+))?"
    r"(?: with ULN (?P<uln>[\d.]+))?(?: by LOINC (?P<loinc>\d+-\d))?"
)
def lab(journey: Journey, lab: str, value: str, unit: str | None, uln: str | None, loinc: str | None) -> None:
    """A screening lab result: ``ALT 121 U/L with ULN 40``, ``HIV positive``, ``ANA 1:80``,
    ``CD19 5 /uL by LOINC 8116-6``."""
    name = LAB_NAMES[lab]
    parsed: float | str = value if value[0].isalpha() or ":" in value else _number(value)
    if isinstance(parsed, str) and ":" in parsed and unit is None:
        unit = "{titer}"
    if not isinstance(parsed, str) and unit is None:
        raise ValueError(f"{lab} {value}: a number needs its unit")
    result = (parsed, unit, None if uln is None else _number(uln))
    code = loinc or (LABS[name][0] if name in LABS else OTHER_LOINC[name])
    _j(journey).labs[name] = (code, result)


@VOCABULARY.step(rf"no (?P<lab>{_LAB}) result")
def no_lab(journey: Journey, lab: str) -> None:
    """A required screening lab left out."""
    _j(journey).labs[LAB_NAMES[lab]] = None


@VOCABULARY.step(rf"the screening labs on study day {DAY}{TIME}")
def lab_day(journey: Journey, day: str, time: str | None) -> None:
    """The day (and time) every screening lab was taken."""
    _j(journey).lab_day = int(day)
    _j(journey).lab_time = _time(time, "10:30:00")


@VOCABULARY.step(rf"(?P<no>no )?(?:medical )?history of (?P<condition>{_CONDITION})")
def history(journey: Journey, no: str | None, condition: str) -> None:
    """A medical-history flag: ``history of kidney transplant``, ``no history of remission``."""
    j = _j(journey)
    j.history = {**(j.history or {}), CONDITIONS[condition]: no is None}


@VOCABULARY.step(r"no medical history recorded")
def no_history(journey: Journey) -> None:
    """No medical history at all."""
    _j(journey).history = {}


@VOCABULARY.step(r"immunosuppressants(?: taken)?:")
def immunosuppressants(journey: Journey, table: list[list[str]] | None = None) -> None:
    """The immunosuppressant history, as a table | agent | start | end | (end empty: ongoing)."""
    if not table or [c.strip() for c in table[0]] != ["agent", "start", "end"]:
        raise ValueError("immunosuppressants are a table with the header | agent | start | end |")
    treatments = [{"agent": a, "start": s, "end": e or None} for a, s, e in ((c.strip() for c in r) for r in table[1:])]
    j = _j(journey)
    j.history = {**(j.history or {}), "immunosuppressants": treatments}


@VOCABULARY.step(r"G-CSF from study day (?P<start>-?\d+)(?: to (?P<end>-?\d+)|, (?P<ongoing>ongoing))")
def gcsf(journey: Journey, start: str, end: str | None, ongoing: str | None) -> None:
    """G-CSF (filgrastim) given from one study day to another, or ongoing."""
    _j(journey).gcsf = (int(start), None if ongoing else int(end or 0))


@VOCABULARY.step(r"no eligibility confirmation")
def unconfirmed(journey: Journey) -> None:
    """The investigator never confirmed eligibility."""
    _j(journey).eligible = None


@VOCABULARY.step(r"the investigator confirms the participant not eligible")
def not_eligible(journey: Journey) -> None:
    """The investigator's confirmation says not eligible."""
    _j(journey).eligible = False


@VOCABULARY.step(r"eligibility confirmed at (?P<time>\d\d:\d\d) on the enrollment day")
def confirmed_at(journey: Journey, time: str) -> None:
    """The time of the eligibility confirmation (enrollment is at 10:30 on study day 10)."""
    _j(journey).eligibility_time = _time(time)


@VOCABULARY.step(r"in the (?P<arm>low|high)-dose arm")
def arm(journey: Journey, arm: str) -> None:
    """The arm the participant is enrolled in."""
    _j(journey).arm = f"{arm}_dose"


@VOCABULARY.step(rf"(?P<step>leukapheresis|lymphodepletion|the infusion) on study day {DAY}")
def step_day(journey: Journey, step: str, day: str) -> None:
    """The study day of a treatment step."""
    setattr(_j(journey), _STEP_FIELDS[step], int(day))


@VOCABULARY.step(r"no (?P<step>leukapheresis|lymphodepletion|infusion)")
def no_step(journey: Journey, step: str) -> None:
    """A treatment step never done."""
    setattr(_j(journey), _STEP_FIELDS[step], None)


_STEP_FIELDS = {
    "leukapheresis": "leukapheresis_day",
    "lymphodepletion": "lymphodepletion_day",
    "the infusion": "infusion_day",
    "infusion": "infusion_day",
}


@VOCABULARY.step(r"(?P<cells>[\d,]+) CAR-T cells infused")
def dose(journey: Journey, cells: str) -> None:
    """The total cells infused (the participant weighs 27.5 kg; the low-dose target is 5x10^5/kg)."""
    _j(journey).total_cells = float(cells.replace(",", ""))


@VOCABULARY.step(r"visit (?P<code>D7|D14|D28|M3|M6|M12|M18|M24) on day (?P<day>\d+) after infusion")
def visit(journey: Journey, code: str, day: str) -> None:
    """A follow-up visit on another day after infusion."""
    _j(journey).visits[code] = int(day)


@VOCABULARY.step(
    r"visit (?P<codes>(?:D7|D14|D28|M3|M6|M12|M18|M24)(?:(?:, | and )(?:D7|D14|D28|M3|M6|M12|M18|M24))*) missed"
)
def missed(journey: Journey, codes: str) -> None:
    """Follow-up visits never done: ``visit D14 missed``, ``visit D7 and D14 missed``."""
    for code in re.split(r", | and ", codes):
        _j(journey).visits[code] = None


@VOCABULARY.step(r"every follow-up visit missed")
def all_missed(journey: Journey) -> None:
    """No follow-up visit at all."""
    _j(journey).visits = dict.fromkeys(("D7", "D14", "D28", "M3", "M6", "M12", "M18", "M24"))


def _extra(journey: Journey, event_type: str, payload: dict[str, Any] | None, day: str, time: str | None,
           after: str | None) -> None:  # fmt: skip
    _j(journey).extra.append(Extra(event_type, payload, int(day), _time(time), after_infusion=after is not None))


WHEN = rf"on (?:study )?day {DAY}(?P<after> after infusion)?{TIME}"


@VOCABULARY.step(
    rf"(?:a(?P<serious> serious)|an) adverse event of CTCAE grade (?P<ctcae>\d)"
    rf"(?: with CRS grade (?P<crs>\d))?(?:(?: and| with) ICANS grade (?P<icans>\d))? {WHEN}"
)
def adverse_event(
    journey: Journey,
    serious: str | None,
    ctcae: str,
    crs: str | None,
    icans: str | None,
    day: str,
    after: str | None,
    time: str | None,
) -> None:
    """An adverse event: ``a serious adverse event of CTCAE grade 3 with CRS grade 4 on day 2 after infusion``."""
    payload: dict[str, Any] = {"term": "CRS" if crs else "adverse event", "ctcae_grade": int(ctcae),
                               "serious": serious is not None}  # fmt: skip
    if crs:
        payload["crs_grade"] = int(crs)
    if icans:
        payload["icans_grade"] = int(icans)
    _extra(journey, "AdverseEventReported", payload, day, time, after)


@VOCABULARY.step(rf"a relapse(?: with UPCR (?P<upcr>[\d.]+) mg/mg)? {WHEN}")
def relapse(journey: Journey, upcr: str | None, day: str, after: str | None, time: str | None) -> None:
    """A relapse reported, with its urine protein/creatinine ratio when given."""
    payload: dict[str, Any] = {"description": "flare"}
    if upcr:
        payload["upcr_mg_mg"] = float(upcr)
    _extra(journey, "RelapseReported", payload, day, time, after)


@VOCABULARY.step(rf"(?P<who>consent|the participant) withdrawn {WHEN}")
def withdrawn(journey: Journey, who: str, day: str, after: str | None, time: str | None) -> None:
    """Consent withdrawn, or the participant withdrawn from the study."""
    if who == "consent":
        _extra(journey, "ConsentWithdrawn", {"reason": "family decision"}, day, time, after)
    else:
        _extra(journey, "ParticipantWithdrawn", {"reason": "moved"}, day, time, after)


@VOCABULARY.step(rf"the clock ticks {WHEN}")
def clock(journey: Journey, day: str, after: str | None, time: str | None) -> None:
    """A ClockTicked watermark: time has passed with no other event."""
    _extra(journey, "ClockTicked", None, day, time, after)


@VOCABULARY.step(rf"a second CAR-T infusion {WHEN}")
def second_infusion(journey: Journey, day: str, after: str | None, time: str | None) -> None:
    """Another infusion of the same dose."""
    payload = {"total_cells": 1.375e7, "weight_kg": 27.5, "product_lot": "LOT-2"}
    _extra(journey, "CarTInfused", payload, day, time, after)


@VOCABULARY.step(rf"(?P<step>leukapheresis|a follow-up visit (?P<code>\w+)) performed {WHEN}")
def procedure(journey: Journey, step: str, code: str | None, day: str, after: str | None, time: str | None) -> None:
    """An extra procedure: ``leukapheresis performed on study day 12``,
    ``a follow-up visit D7 performed on day 7 after infusion``."""
    if code is None:
        _extra(journey, "LeukapheresisPerformed", None, day, time, after)
    else:
        _extra(journey, "FollowUpVisitCompleted", {"visit": code}, day, time, after)


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
