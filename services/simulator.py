"""``trialguard simulate``: a synthetic NCT06904729 cohort as contract-v1 JSON lines, with protocol
deviations injected at a chosen rate and a ground-truth label file.

A participant is registered, consents (with a guardian when under 18), brings a kidney biopsy,
screening labs in the units and LOINC codes real laboratories send, SLEDAI-2K, the EULAR/ACR
score, a medical history and ECOG; the investigator confirms eligibility (some are screen
failures and are never enrolled); the enrolled go through leukapheresis, lymphodepletion and one
CAR-T infusion at their arm's dose, report adverse events, and come to the follow-up visits of
the schedule until they complete M24, withdraw, or the data cut-off arrives. A scheduler
publishes a ``ClockTicked`` watermark every week for every active participant. Some relapse.

With probability ``deviation_rate`` a participant gets one deviation (sometimes two) injected:
one fact of their journey is changed, as the rule table of tests/unit/test_rules.py does, and
the rule ids that change must raise are recorded. Rules are picked round-robin over the whole
catalogue, so every rule id is injected once at least as soon as that many participants are
injected. The labels are what was injected (and the relapses that happened, which raise the
RELAPSE alert): the protocol is never run to compute them, so a replay of the events through the
protocol must reproduce them exactly, multiplicity included.

Deterministic: everything is drawn from ``random.Random(seed)`` (one generator per participant,
seeded from it), never from the global generator or the clock, so the same seed gives
byte-identical files. Events are written in log order (event time, then participant, then the
participant's own order) through a bucket sort on disk: memory does not grow with the cohort, and
the work grows linearly with it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

from protocol.nct06904729 import parameters as p
from protocol.nct06904729.design import SCHEDULE, TARGET_CELLS_PER_KG
from protocol.nct06904729.screening import REQUIRED_LABS
from services.files import atomic_text

STUDY_ID = "NCT06904729"
STUDY_START = dt.date(2023, 3, 6)
"""Day 0 of the simulated study (a Monday: the scheduler's weekly watermark falls on day % 7 == 0)."""
RECRUITMENT_DAYS = 900
"""Consent dates are spread over this many days from the study start."""
CUTOFF_DAY = 1092
"""The data cut-off (156 weeks after the start, a Monday): nothing happens after it; the last
watermark of every participant still active is published at its midnight."""
TICK_EVERY_DAYS = 7
MAX_SEED = 10**18
"""Seeds are part of participant ids (``S{seed}-00001``), which the contract keeps to 64 characters."""
DAY = 1440
"""Minutes per day: event times are whole minutes since the study start, local time (+08:00)."""
OFFSET = "+08:00"

EVENT_NAMESPACE = uuid.UUID("0c5e0b53-7d0e-4f7b-9a55-8f0e3d4c2a61")
"""uuid5 namespace of simulated event ids (with the seed, the participant and their sequence number)."""

RULE_IDS: tuple[str, ...] = (
    "ELIG-IN01",
    "ELIG-IN02",
    "ELIG-IN03",
    "ELIG-IN04",
    "ELIG-IN05",
    "ELIG-IN06",
    "ELIG-IN08",
    "ELIG-IN09",
    "ELIG-IN10",
    "ELIG-IN11",
    *(f"ELIG-EX{n:02d}" for n in range(1, 11)),
    "ELIG-MISSING",
    "CONSENT-01",
    "CONSENT-02",
    "SEQ-01",
    "SEQ-02",
    "SEQ-03",
    "SEQ-04",
    "DOSE-01",
    "VISIT-01",
    "VISIT-02",
    "SAFETY-CRS3",
    "SAFETY-ICANS3",
    "SAFETY-SAE",
    "RELAPSE",
)
"""Every rule id of the NCT06904729 v1 catalogue: each can be injected."""

_GROUP_OF: dict[str, str] = {
    **{r: "eligibility" for r in RULE_IDS if r.startswith("ELIG-")},
    "ELIG-IN08": "consent",
    "CONSENT-01": "consent",
    "CONSENT-02": "withdrawal",
    "SEQ-01": "confirmation",
    "SEQ-02": "treatment",
    "SEQ-03": "treatment",
    "SEQ-04": "treatment",
    "DOSE-01": "treatment",
    "VISIT-01": "follow-up",
    "VISIT-02": "follow-up",
    "SAFETY-CRS3": "safety",
    "SAFETY-ICANS3": "safety",
    "SAFETY-SAE": "safety",
    "RELAPSE": "relapse",
}
"""Injections of one group touch the same facts: a participant gets at most one per group, and a
consent withdrawal (which ends the journey) comes alone."""

_STAGES = ("eligibility", "consent", "confirmation", "treatment", "withdrawal", "follow-up", "safety", "relapse")
"""The order injections are applied in: the journey's timeline first, then what hangs off it."""

SCREEN_FAILURE_RULES = frozenset({"CONSENT-01", "CONSENT-02", "SEQ-02", "SAFETY-SAE"})
"""Rules that can be raised for a participant who is never enrolled."""


_HISTORY_EXCLUSIONS = {
    "ELIG-EX01": "kidney_transplant",
    "ELIG-EX02": "serious_drug_allergy",
    "ELIG-EX03": "uncontrolled_infection",
    "ELIG-EX04": "severe_organ_dysfunction",
    "ELIG-EX05": "congenital_ig_deficiency",
    "ELIG-EX07": "malignancy_within_5y",
    "ELIG-EX08": "severe_cns_or_psychiatric",
    "ELIG-EX09": "other_trial_within_3m",
    "ELIG-EX10": "prior_car_t",
}

_IMMUNOSUPPRESSANTS = (
    "mycophenolate mofetil",
    "tacrolimus",
    "cyclophosphamide",
    "cyclosporine",
    "azathioprine",
    "leflunomide",
    "rituximab",
    "belimumab",
)
_GROWTH = (
    # age (years), height F, height M (cm), weight F, weight M (kg): Chinese growth references, roughly
    (5, 110.0, 111.0, 18.5, 19.5),
    (6, 116.0, 118.0, 21.0, 22.0),
    (8, 128.0, 130.0, 26.0, 28.0),
    (10, 140.0, 140.0, 33.0, 35.0),
    (12, 151.0, 151.0, 41.0, 43.0),
    (14, 157.0, 163.0, 48.0, 53.0),
    (16, 159.0, 170.0, 52.0, 59.0),
    (18, 160.0, 172.0, 53.0, 63.0),
    (21, 160.0, 172.0, 54.0, 65.0),
)
_REGIMEN = "fludarabine 25 mg/m2 + cyclophosphamide 250 mg/m2, days -5 to -3"
_WITHDRAWAL_REASONS = (
    "family relocated out of the region",
    "lost to follow-up",
    "investigator decision: participant safety",
    "participant no longer wishes to attend visits",
)
_MILD_AES = (
    ("Neutrophil count decreased", 1, 2),
    ("Fever", 1, 1),
    ("Upper respiratory infection", 1, 2),
    ("Hypogammaglobulinaemia", 2, 2),
    ("Nausea", 1, 1),
    ("Headache", 1, 1),
)
_SERIOUS_AES = ("Pneumonia", "Febrile neutropenia", "Herpes zoster, disseminated", "Sepsis")

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

# --- time -------------------------------------------------------------------------------------

_DATES: dict[int, str] = {}


def _date(day: int) -> str:
    text = _DATES.get(day)
    if text is None:
        text = _DATES[day] = (STUDY_START + dt.timedelta(days=day)).isoformat()
    return text


_CLOCK = [f"T{m // 60:02d}:{m % 60:02d}:" for m in range(DAY)]
_SECONDS = [f"{s:02d}{OFFSET}" for s in range(60)]


def _stamp(seconds: int) -> str:
    """An ISO-8601 timestamp with the site's offset, from seconds since the study start."""
    day, rest = divmod(seconds, 86400)
    text = _DATES.get(day)
    if text is None:
        text = _date(day)
    return text + _CLOCK[rest // 60] + _SECONDS[rest % 60]


_NAMESPACE_HASH = hashlib.sha1(EVENT_NAMESPACE.bytes, usedforsecurity=False)


def event_id(seed: int, participant_id: str, number: int) -> str:
    """The id of a participant's ``number``-th event: ``uuid5(EVENT_NAMESPACE, "seed/participant/number")``,
    computed without building a UUID object (it is the same string ``str(uuid.uuid5(...))`` gives)."""
    digest = _NAMESPACE_HASH.copy()
    digest.update(f"{seed}/{participant_id}/{number}".encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    x = raw.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def _as_date(day: int) -> dt.date:
    return STUDY_START + dt.timedelta(days=day)


def _age(birth: dt.date, on: dt.date) -> int:
    """Completed years of age on a date."""
    return on.year - birth.year - (0 if (on.month, on.day) >= (birth.month, birth.day) else 1)


# --- a participant's journey --------------------------------------------------------------------


class Ev:
    """One planned event: minutes since the study start, type, payload, recording delay (s), source."""

    __slots__ = ("delay", "etype", "payload", "source", "t", "tag")

    def __init__(self, t: int, etype: str, payload: dict[str, Any], delay: int, source: str, tag: str = "") -> None:
        self.t, self.etype, self.payload, self.delay, self.source, self.tag = t, etype, payload, delay, source, tag


class Lab:
    """One screening result; ``day`` counts from the screening day."""

    __slots__ = ("day", "delay", "loinc", "uln", "unit", "value")

    def __init__(
        self, loinc: str, value: float | str, unit: str | None, uln: float | None, day: int, delay: int
    ) -> None:
        self.loinc, self.value, self.unit, self.uln, self.day, self.delay = loinc, value, unit, uln, day, delay

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {"loinc": self.loinc, "value": self.value}
        if self.unit is not None:
            body["unit"] = self.unit
        if self.uln is not None:
            body["uln"] = self.uln
        return body


@dataclass
class Visit:
    code: str
    day: int
    minute: int


class Journey:
    """One participant: a clean journey drawn from their own generator, then the injections.

    Days are absolute (since STUDY_START); the timeline is kept as offsets so that an injection
    that moves one step (a late enrollment, an early infusion) moves what hangs off it.
    """

    def __init__(
        self, index: int, seed: int, rng: random.Random, rules: tuple[str, ...], screen_fail: bool, consent_day: int
    ) -> None:
        self.index = index
        self.seed = seed
        self.pid = f"S{seed}-{index + 1:05d}"
        self.r = rng
        self.rules = rules
        self.labels: list[str] = []
        self.screen_fail = screen_fail and all(rule in SCREEN_FAILURE_RULES for rule in rules)
        self.c = consent_day
        self.extra: list[Ev] = []
        self.aes: list[Ev] = []
        self.relapses: list[Ev] = []
        self.visits: list[Visit] = []
        self.stop: int | None = None  # nothing of the journey at or after this minute (but the final events)
        self.final: list[Ev] = []
        self.quiet: tuple[int, int] | None = None  # days (inclusive) with no event but one late visit
        self.outcome = "screen failure" if self.screen_fail else "enrolled"
        self._draw()

    # -- the clean journey ----------------------------------------------------------------------

    def _draw(self) -> None:
        r = self.r
        self.site = "GZ-01" if r.random() < 0.8 else "GZ-02"
        self.sex = "F" if r.random() < 0.82 else "M"
        self._set_age(r.uniform(6 * 365.25 + 90, 19 * 365.25 - 90))
        self.reg_day = self.c - r.randint(1, 14)
        self.reg_minute = r.randint(540, 960)
        # Consent: the participant (assent under 18) and, for a minor, a guardian, the same morning.
        self.consent_minute = r.randint(560, 660)
        self.signatures: list[tuple[str, int, int]] = [("participant", self.c, self.consent_minute)]
        if self.minor:
            self.signatures.append(("guardian", self.c, self.consent_minute + r.choice((-12, -5, 3, 6, 10, 25))))
        self.biopsy_day: int | None = self.c - r.randint(14, 120)
        self.biopsy_class = r.choices(("III", "IV", "III+V", "IV+V"), (30, 45, 10, 15))[0]
        self.biopsy_active = True
        self.screening_off = r.randint(1, 6)
        self.lab_minute = r.randint(450, 570)
        self.assess_off = r.randint(1, 6)
        self.enroll_off = r.randint(8, 21)
        self.confirm_back = r.randint(0, 2)
        self.eligible = not self.screen_fail
        self.confirmed = True
        self.confirm_after_enrollment = False
        self.leuka_off = r.randint(2, 7)  # days after enrollment
        self.ld_off = r.randint(10, 18)  # days after leukapheresis (manufacturing)
        self.infusion_off = r.randint(3, 7)  # days after lymphodepletion
        self.has_leuka = self.has_ld = True
        self.arm = "low_dose" if r.random() < 0.5 else "high_dose"
        self.dose_ratio = r.uniform(0.9, 1.1)
        self.infusion_weight = round(self.weight * r.uniform(0.97, 1.03), 1)
        self.sledai: int | None = 8 + 2 * r.randint(0, 9)
        self.ecog: int | None = r.choices((0, 1, 2), (50, 35, 15))[0]
        self.eular: tuple[bool, int] | None = (True, r.randint(12, 38))
        self.history: dict[str, Any] | None = self._clean_history()
        self.gcsf: tuple[int, int | None] | None = None  # start, end: days relative to the neutrophil sample
        if r.random() < 0.15:
            self.gcsf = (-r.randint(60, 180), -r.randint(30, 59))
        self.other_meds = r.random() < 0.6
        self.labs: dict[str, list[Lab]] = {}
        self._clean_labs()
        if self.screen_fail:
            self._screen_failure_reason()

    def _set_age(self, age_days: float) -> None:
        self.birth = _as_date(self.c) - dt.timedelta(days=round(age_days))
        self.minor = _age(self.birth, _as_date(self.c)) < p.AGE_OF_CONSENT.value
        self.height, self.weight = self._body(age_days / 365.25)

    def _body(self, age: float) -> tuple[float, float]:
        for (a0, *lo), (a1, *hi) in itertools.pairwise(_GROWTH):
            if a0 <= age <= a1 or a1 == _GROWTH[-1][0]:
                f = min(max((age - a0) / (a1 - a0), 0.0), 1.0)
                row = [x + (y - x) * f for x, y in zip(lo, hi, strict=True)]
                break
        male = self.sex == "M"
        height = row[1 if male else 0] * self.r.gauss(1.0, 0.04)
        weight = row[3 if male else 2] * min(max(self.r.gauss(1.0, 0.13), 0.75), 1.5)
        return round(height, 1), round(weight, 1)

    def _clean_history(self) -> dict[str, Any]:
        r = self.r
        consent = _as_date(self.c)
        agents = r.sample(_IMMUNOSUPPRESSANTS[:6], r.randint(2, 3))
        treatments = []
        since_age_4 = (consent - self.birth).days - 4 * 365
        for agent in agents:
            start = consent - dt.timedelta(days=r.randint(300, max(300, min(1500, since_age_4))))
            end: dt.date | None = None
            if r.random() < 0.6:
                latest = (consent - start).days - 7
                end = start + dt.timedelta(days=r.randint(240, max(240, latest)))
            treatments.append({"agent": agent, "start": start.isoformat(), "end": end and end.isoformat()})
        relapsed = r.random() < 0.3
        return {
            "immunosuppressants": treatments,
            "remission_achieved": relapsed,
            "relapse_after_remission": relapsed,
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
            "gilbert_syndrome": r.random() < 0.03,
        }

    def _delay(self, low: int, high: int) -> int:
        return self.r.randint(low, high)

    def _put(self, name: str, loinc: str, value: float | str, unit: str | None = None, uln: float | None = None,
             *, day: int = 0, delay: tuple[int, int] = (3600, 4 * 3600)) -> None:  # fmt: skip
        self.labs.setdefault(name, []).append(Lab(loinc, value, unit, uln, day, self._delay(*delay)))

    def _count(self, loincs: tuple[str, ...], value: float) -> tuple[str, float, str]:
        """A cell count (in 10*9/L) in the participant's laboratory's unit and code."""
        loinc = loincs[0] if self.r.random() < 0.7 else self.r.choice(loincs[1:])
        if self.count_unit == "/uL":
            return loinc, float(round(value * 100) * 10), "/uL"
        return loinc, round(value, 2), self.count_unit

    def _hemoglobin(self, g_per_l: float) -> tuple[str, float, str]:
        if self.hb_unit == "g/L":
            return "718-7", float(round(g_per_l)), "g/L"
        if self.hb_unit == "g/dL":
            return "718-7", round(g_per_l / 10, 1), "g/dL"
        return "59260-0", round(g_per_l / 16.1, 1), "mmol/L"

    def _bilirubin(self, multiple: float) -> tuple[str, float, str, float]:
        if self.si:
            uln = self.r.choice((17.1, 20.5, 21.0))
            return ("14631-6" if self.r.random() < 0.7 else "1975-2"), round(uln * multiple, 1), "umol/L", uln
        uln = self.r.choice((1.0, 1.2))
        return "1975-2", round(uln * multiple, 2), "mg/dL", uln

    def _creatinine(self, egfr: float) -> tuple[str, float, str]:
        mg_dl = 0.413 * self.height / egfr
        if self.si:
            return ("14682-9" if self.r.random() < 0.7 else "2160-0"), float(round(mg_dl * 88.4)), "umol/L"
        return "2160-0", round(mg_dl, 2), "mg/dL"

    def _inr(self, value: float, uln: float | None) -> None:
        unit = self.r.choice(("{INR}", "{INR}", "{ratio}", None))
        self._put("inr", self.r.choice(("6301-6", "6301-6", "34714-6")), round(value, 2), unit, uln)

    def _pt(self, multiple: float) -> None:
        uln = self.r.choice((13.5, 14.0, 12.8))
        unit = "s" if self.r.random() < 0.8 else "sec"
        self._put("pt", self.r.choice(("5902-2", "5902-2", "5964-2")), round(uln * multiple, 1), unit, uln)

    def _enzyme(self, name: str, multiple: float) -> None:
        uln = self.r.choice((40.0, 50.0)) if name == "alt" else self.r.choice((35.0, 40.0))
        loinc = "1742-6" if name == "alt" else "1920-8"
        self._put(name, loinc, float(round(uln * multiple)), self.r.choice(("U/L", "U/L", "IU/L")), uln)

    def _clean_labs(self) -> None:
        r = self.r
        self.si = r.random() < (0.75 if self.site == "GZ-01" else 0.35)
        self.count_unit = r.choices(("10*9/L", "10*3/uL", "/uL"), (55, 35, 10))[0]
        self.hb_unit = r.choices(("g/L", "g/dL", "mmol/L"), (65, 30, 5))[0]
        cbc = (1800, 3 * 3600)
        for name, loincs, low, high in (
            ("lymphocytes", ("731-0", "26474-7"), 1.25, 3.8),
            ("wbc", ("6690-2", "26464-8", "804-5"), 3.8, 10.5),
            ("neutrophils", ("751-8", "26499-4", "753-4"), 1.4, 7.0),
        ):
            loinc, value, unit = self._count(loincs, r.uniform(low, high))
            self._put(name, loinc, value, unit, delay=cbc)
        if r.random() < 0.08:  # a low haemoglobin, repeated two days later (the latest counts)
            self._put("hemoglobin", *self._hemoglobin(r.uniform(45, 58)), delay=cbc)
            self._put("hemoglobin", *self._hemoglobin(r.uniform(82, 110)), day=2, delay=cbc)
        else:
            self._put("hemoglobin", *self._hemoglobin(r.uniform(82, 140)), delay=cbc)
        self._enzyme("alt", r.uniform(0.2, 2.0))
        self._enzyme("ast", r.uniform(0.3, 2.0))
        multiple = r.uniform(1.0, 1.4) if self.history and self.history["gilbert_syndrome"] else r.uniform(0.15, 1.0)
        loinc, value, unit, uln = self._bilirubin(multiple)
        self._put("total_bilirubin", loinc, value, unit, uln)
        self._put("creatinine", *self._creatinine(r.uniform(65, 150)))
        self._inr(r.uniform(0.88, 1.2), r.choice((None, 1.2, 1.15)))
        self._pt(r.uniform(0.78, 1.08))
        titre = r.choices(("1:80", "1:160", "1:320", "1:640", "1:1280"), (5, 25, 35, 25, 10))[0]
        ana_loinc = r.choice(("5048-4", "5048-4", "29953-7"))
        if r.random() < 0.1:
            self._put("ana", ana_loinc, float(titre[2:]), "{titer}", delay=(86400, 3 * 86400))
        else:
            self._put("ana", ana_loinc, titre, r.choice(("{titer}", None)), delay=(86400, 3 * 86400))
        self._cd19(positive=True)
        serology = (86400, 2 * 86400)
        for name, loincs in (
            ("hbsag", ("5196-1", "5195-3")),
            ("anti_hbc", ("16933-4", "13952-7")),
            ("anti_hcv", ("16128-1", "13955-0")),
            ("hiv", ("31201-7", "56888-1")),
            ("syphilis", ("24110-9", "22587-0")),
        ):
            self._put(name, loincs[0] if r.random() < 0.8 else loincs[1], "negative", delay=serology)
        if r.random() < 0.07:  # resolved hepatitis B: anti-HBc positive, HBV DNA not above normal
            self.labs["anti_hbc"][-1].value = "positive"
            if r.random() < 0.5:
                self._put("hbv_dna", "42595-9", "negative", delay=(2 * 86400, 4 * 86400))
            else:
                self._put("hbv_dna", "42595-9", float(r.randint(0, 15)), "[IU]/mL", 20.0, delay=(2 * 86400, 4 * 86400))
        # Labs no criterion reads: the urine protein/creatinine ratio and complement.
        upcr = r.uniform(0.6, 4.5)
        if self.si:
            self._put("upcr", "2890-2", round(upcr * 113.1, 1), "mg/mmol{creat}")
        else:
            self._put("upcr", "2890-2", float(round(upcr * 1000)), "mg/g{creat}")
        self._put("c3", "4485-9", round(r.uniform(0.2, 0.8), 2), "g/L", None)

    def _cd19(self, *, positive: bool) -> None:
        r = self.r
        self.labs.pop("cd19", None)
        flow = (86400, 2 * 86400)
        style = r.random()
        if style < 0.6:
            self._put("cd19", "8117-4", round(r.uniform(3, 30), 1) if positive else 0.0, "%", delay=flow)
        elif style < 0.9:
            unit = r.choice(("/uL", "/uL", "10*6/L"))
            self._put("cd19", "8116-6", float(r.randint(40, 900)) if positive else 0.0, unit, delay=flow)
        else:
            self._put("cd19", "8117-4", "positive" if positive else "negative", delay=flow)

    def _screen_failure_reason(self) -> None:
        r = self.r
        reason = r.choice(("age", "sledai", "biopsy", "ecog", "cd19", "hbsag", "judgement"))
        if reason == "age":
            young = r.random() < 0.5
            self._set_age(
                r.uniform(5 * 365.25 + 30, 6 * 365.25 - 30) if young else r.uniform(19 * 365.25 + 30, 20 * 365.25)
            )
            self.signatures = [("participant", self.c, self.consent_minute)]
            if self.minor:
                self.signatures.append(("guardian", self.c, self.consent_minute + 8))
            self.infusion_weight = self.weight
        elif reason == "sledai":
            self.sledai = r.randint(2, 7)
        elif reason == "biopsy":
            self.biopsy_class = r.choice(("II", "V", "VI"))
        elif reason == "ecog":
            self.ecog = 3
        elif reason == "cd19":
            self._cd19(positive=False)
        elif reason == "hbsag":
            self.labs["hbsag"][-1].value = "positive"

    # -- the timeline ---------------------------------------------------------------------------

    @property
    def screening_day(self) -> int:
        return self.c + self.screening_off

    @property
    def assess_day(self) -> int:
        return self.c + self.assess_off

    @property
    def enroll_day(self) -> int:
        return self.c + self.enroll_off

    @property
    def confirm_day(self) -> int:
        return self.enroll_day - self.confirm_back

    @property
    def leuka_day(self) -> int:
        return self.enroll_day + self.leuka_off

    @property
    def ld_day(self) -> int:
        return self.leuka_day + self.ld_off

    @property
    def infusion_day(self) -> int:
        return self.ld_day + self.infusion_off

    @property
    def enrolled(self) -> bool:
        return self.outcome != "screen failure" and self.outcome != "withdrawn in screening"

    def _plan_follow_up(self) -> None:
        """Visits, adverse events and perhaps a relapse, from the infusion on."""
        r = self.r
        inf = self.infusion_day
        self.visits, self.aes, self.relapses = [], [], []
        if not self.enrolled:
            return
        for window in SCHEDULE:
            jitter = round(r.triangular(-window.window_days, window.window_days, 0))
            day = inf + window.day + jitter
            minute = r.randint(540, 960)
            if day * DAY + minute < CUTOFF_DAY * DAY:
                self.visits.append(Visit(window.code, day, minute))
        if r.random() < 0.55:
            grade = 1 if r.random() < 0.7 else 2
            self._ae(inf + r.randint(1, 7), "Cytokine release syndrome", grade, crs_grade=grade)
        if r.random() < 0.08:
            grade = r.choice((1, 2))
            self._ae(inf + r.randint(3, 10), "Immune effector cell-associated neurotoxicity syndrome", grade,
                     icans_grade=grade)  # fmt: skip
        for _ in range(r.choice((0, 0, 1, 1, 2))):
            term, low, high = r.choice(_MILD_AES)
            self._ae(inf + r.randint(2, 90), term, r.randint(low, high))
        if r.random() < 0.12:
            self._relapse(natural=True)

    def horizon(self) -> int:
        """The last day anything may happen: the day before the M24 visit or the cut-off."""
        last = self.visits[-1] if self.visits else None
        return last.day - 1 if last is not None and last.code == "M24" else CUTOFF_DAY - 1

    def _ae(self, day: int, term: str, grade: int, *, serious: bool = False, **grades: int) -> Ev:
        payload: dict[str, Any] = {"term": term, "ctcae_grade": grade, "serious": serious, **grades}
        day = min(day, self.horizon())
        event = Ev(day * DAY + self.r.randint(60, 1380), "AdverseEventReported", payload,
                   self._delay(3600, 3 * 86400), "edc")  # fmt: skip
        self.aes.append(event)
        return event

    def _relapse(self, *, natural: bool, day: int | None = None) -> None:
        r = self.r
        if day is None:
            earliest = self.infusion_day + 60
            day = r.randint(earliest, max(earliest, min(self.horizon(), self.infusion_day + 700)))
        upcr = round(r.uniform(0.6, 3.5), 2)
        payload = {"description": "Renal flare: proteinuria recurred after response", "upcr_mg_mg": upcr}
        self.relapses.append(Ev(day * DAY + r.randint(600, 900), "RelapseReported", payload,
                                self._delay(3600, 86400), "edc", "natural" if natural else "injected"))  # fmt: skip

    # -- injections -----------------------------------------------------------------------------

    def inject(self) -> None:
        """Apply the injections in timeline order, then plan what follows the infusion."""
        ordered = sorted(self.rules, key=lambda rule: _STAGES.index(_GROUP_OF[rule]))
        follow_up_planned = False
        for rule in ordered:
            stage = _STAGES.index(_GROUP_OF[rule])
            if stage >= _STAGES.index("withdrawal") and not follow_up_planned:
                self._plan_follow_up()
                follow_up_planned = True
            self.labels += _INJECTIONS[rule](self)
        if not follow_up_planned:
            self._plan_follow_up()
        if not self.rules and self.enrolled and self.r.random() < 0.07:
            self._natural_withdrawal()

    def _natural_withdrawal(self) -> None:
        r = self.r
        day = r.randint(self.enroll_day + 1, max(self.enroll_day + 1, self.horizon()))
        at = day * DAY + r.randint(600, 900)
        reason = r.choice(_WITHDRAWAL_REASONS)
        self.final = []
        if r.random() < 0.5:
            self.final.append(Ev(at - 15, "ConsentWithdrawn", {"reason": "guardian withdrew consent"}, 600, "edc"))
        self.final.append(Ev(at, "ParticipantWithdrawn", {"reason": reason}, self._delay(600, 86400), "edc"))
        self.stop = self.final[0].t
        self.outcome = "withdrawn"

    # -- building the events --------------------------------------------------------------------

    def events(self) -> list[Ev]:
        """The journey's events (no watermarks), in the participant's log order."""
        r = self.r
        ev: list[Ev] = []
        add = ev.append
        edc = "edc"
        reg = {
            "birth_date": self.birth.isoformat(),
            "sex": self.sex,
            "height_cm": self.height,
            "weight_kg": self.weight,
        }
        add(Ev(self.reg_day * DAY + self.reg_minute, "ParticipantRegistered", reg, 900, edc))
        for signer, day, minute in self.signatures:
            add(Ev(day * DAY + minute, "ConsentSigned", {"signer": signer, "consent_version": "1.0"}, 1800, edc))
        screening, assess = self.screening_day, self.assess_day
        if self.biopsy_day is not None:
            reported = (assess - self.biopsy_day) * 86400 + 5 * 3600
            biopsy = {"isn_rps_class": self.biopsy_class, "active_lesions": self.biopsy_active}
            add(Ev(self.biopsy_day * DAY + 600, "KidneyBiopsyReported", biopsy, reported, "pathology"))
        for results in self.labs.values():
            for lab in results:
                add(Ev((screening + lab.day) * DAY + self.lab_minute, "ScreeningLabResulted", lab.payload(),
                       lab.delay, "lis"))  # fmt: skip
        at = assess * DAY + 600
        if self.sledai is not None:
            add(Ev(at, "DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": self.sledai}, 3600, edc))
        if self.eular is not None:
            eular = {"criteria": "EULAR/ACR 2019", "ana_entry_met": self.eular[0], "score": self.eular[1]}
            add(Ev(at + 5, "SLEClassificationScored", eular, 3600, edc))
        if self.history is not None:
            add(Ev(at + 10, "MedicalHistoryRecorded", self.history, 7200, edc))
        if self.ecog is not None:
            add(Ev(at + 15, "PerformanceStatusAssessed", {"scale": "ECOG", "score": self.ecog}, 3600, edc))
        if self.gcsf is not None:
            sampled = screening + max((lab.day for lab in self.labs.get("neutrophils", ())), default=0)
            start, end = self.gcsf
            med = {"drug_class": "G-CSF", "agent": "filgrastim", "start": _date(sampled + start),
                   "end": None if end is None else _date(sampled + end)}  # fmt: skip
            add(Ev(at + 20, "ConcomitantMedicationRecorded", med, 7200, edc))
        if self.other_meds:
            med = {"drug_class": "corticosteroid", "agent": "prednisone", "start": _date(self.c - 400), "end": None}
            add(Ev(at + 21, "ConcomitantMedicationRecorded", med, 7200, edc))
        if self.outcome == "withdrawn in screening":
            ev += self.extra
            return self._finish(ev)
        if self.confirmed:
            confirm_day = self.enroll_day + 2 if self.confirm_after_enrollment else self.confirm_day
            confirmation = {"investigator": "inv-01" if self.site == "GZ-01" else "inv-02", "eligible": self.eligible}
            add(Ev(confirm_day * DAY + 570, "EligibilityConfirmed", confirmation, 1200, edc))
        if self.screen_fail:
            self.stop = self.confirm_day * DAY + 571
            ev += self.extra
            return self._finish(ev)
        add(Ev(self.enroll_day * DAY + 870, "ParticipantEnrolled", {"arm": self.arm}, 600, edc))
        if self.has_leuka:
            add(Ev(self.leuka_day * DAY + 500, "LeukapheresisPerformed", {}, 3600, "ctl"))
        if self.has_ld:
            add(Ev(self.ld_day * DAY + 510, "LymphodepletionAdministered", {"regimen": _REGIMEN}, 3600, "ctl"))
        add(Ev(self.infusion_day * DAY + 630, "CarTInfused", self._infusion(self.dose_ratio, 1), 3600, "ctl"))
        for visit in self.visits:
            add(Ev(visit.day * DAY + visit.minute, "FollowUpVisitCompleted", {"visit": visit.code},
                   r.randint(1800, 8 * 3600), edc, f"visit:{visit.code}"))  # fmt: skip
        ev += self.aes
        ev += self.relapses
        ev += self.extra
        return self._finish(ev)

    def _infusion(self, ratio: float, number: int) -> dict[str, Any]:
        target = TARGET_CELLS_PER_KG[self.arm]
        total = float(round(target * self.infusion_weight * ratio / 1e5) * 100000)
        lot = f"CART{self.index + 1:05d}-{number}"
        return {"total_cells": total, "weight_kg": self.infusion_weight, "product_lot": lot}

    def _finish(self, ev: list[Ev]) -> list[Ev]:
        if self.stop is not None:
            ev = [e for e in ev if e.t < self.stop]
        ev += self.final
        ev.sort(key=lambda e: e.t)  # stable: the order above among equal times
        return ev

    def ticks(self, events: list[Ev]) -> Iterator[int]:
        """Days of this participant's weekly watermarks (at midnight), while active."""
        last = events[-1].t
        end = CUTOFF_DAY * DAY if self.active_at_cutoff(events) else last
        first = (self.reg_day // TICK_EVERY_DAYS + 1) * TICK_EVERY_DAYS
        for day in range(first, end // DAY + 1, TICK_EVERY_DAYS):
            if day * DAY > end:
                break
            if self.quiet is not None and self.quiet[0] <= day <= self.quiet[1]:
                continue
            yield day

    def active_at_cutoff(self, events: list[Ev]) -> bool:
        if self.stop is not None or self.screen_fail or self.outcome == "withdrawn in screening":
            return False
        return not (self.visits and self.visits[-1].code == "M24")


# -- the injections, one function per rule id ------------------------------------------------------

Injection = Callable[[Journey], list[str]]


def _in01(j: Journey) -> list[str]:
    young = j.r.random() < 0.5
    lo, hi = (5, 6) if young else (19, 20)
    j._set_age(j.r.uniform(lo * 365.25 + 90, hi * 365.25 - 90))
    j.infusion_weight = round(j.weight * j.r.uniform(0.97, 1.03), 1)
    j.signatures = [("participant", j.c, j.consent_minute)]
    if j.minor:
        j.signatures.append(("guardian", j.c, j.consent_minute + 7))
    return ["ELIG-IN01"]


def _in02(j: Journey) -> list[str]:
    j.eular = (True, j.r.randint(4, 9)) if j.r.random() < 0.6 else (False, j.r.randint(12, 30))
    return ["ELIG-IN02"]


def _in03(j: Journey) -> list[str]:
    variant = j.r.choice(("class", "inactive", "old"))
    if variant == "class":
        j.biopsy_class = j.r.choice(("II", "V", "VI", "II+V"))
    elif variant == "inactive":
        j.biopsy_active = False
    else:
        j.biopsy_day = j.c - j.r.randint(200, 400)
    return ["ELIG-IN03"]


def _in04(j: Journey) -> list[str]:
    j.sledai = j.r.randint(2, 7)
    return ["ELIG-IN04"]


def _in05(j: Journey) -> list[str]:
    r, h = j.r, j.history
    assert h is not None
    variant = r.choice(("one agent", "short second agent", "same agent twice", "remission", "proteinuria"))
    consent = _as_date(j.c)
    first = h["immunosuppressants"][0]
    if variant in ("one agent", "short second agent", "same agent twice"):
        h["remission_achieved"] = h["relapse_after_remission"] = False
        treatments = [first]
        if variant == "short second agent":
            start = consent - dt.timedelta(days=r.randint(200, 400))
            end = start + dt.timedelta(days=r.randint(30, 150))
            treatments.append({"agent": "cyclophosphamide" if first["agent"] != "cyclophosphamide" else "tacrolimus",
                               "start": start.isoformat(), "end": end.isoformat()})  # fmt: skip
        elif variant == "same agent twice":
            start = consent - dt.timedelta(days=r.randint(1600, 2000))
            end = start + dt.timedelta(days=r.randint(200, 300))
            treatments.insert(0, {"agent": first["agent"].title(), "start": start.isoformat(), "end": end.isoformat()})
        h["immunosuppressants"] = treatments
    elif variant == "remission":
        h["remission_achieved"], h["relapse_after_remission"] = True, False
    else:
        h["proteinuria_in_remission"] = True
    return ["ELIG-IN05"]


def _in06(j: Journey) -> list[str]:
    j._cd19(positive=False)
    return ["ELIG-IN06"]


def _in09(j: Journey) -> list[str]:
    r = j.r
    variant = r.choice(
        ("lymphocytes", "wbc", "neutrophils", "hemoglobin", "alt", "ast", "bilirubin", "egfr", "inr", "pt", "gcsf")
    )
    if variant in ("lymphocytes", "wbc", "neutrophils"):
        threshold = {"lymphocytes": p.LYMPHOCYTES_MIN, "wbc": p.WBC_MIN, "neutrophils": p.NEUTROPHILS_MIN}[variant]
        lab = j.labs[variant][-1]
        loinc, lab.value, lab.unit = j._count((lab.loinc, lab.loinc), threshold.value * r.uniform(0.3, 0.8))
    elif variant == "hemoglobin":
        lab = j.labs["hemoglobin"][-1]
        lab.loinc, lab.value, lab.unit = j._hemoglobin(p.HEMOGLOBIN_MIN.value * r.uniform(0.65, 0.9))
    elif variant in ("alt", "ast"):
        lab = j.labs[variant][-1]
        assert lab.uln is not None
        lab.value = float(round(lab.uln * p.TRANSAMINASE_MAX_ULN.value * r.uniform(1.12, 2.5)))
    elif variant == "bilirubin":
        assert j.history is not None
        limit = p.BILIRUBIN_MAX_ULN_GILBERT if j.history["gilbert_syndrome"] else p.BILIRUBIN_MAX_ULN
        j.labs.pop("total_bilirubin")
        loinc, value, unit, uln = j._bilirubin(limit.value * r.uniform(1.15, 1.9))
        j._put("total_bilirubin", loinc, value, unit, uln)
    elif variant == "egfr":
        j.labs.pop("creatinine")
        j._put("creatinine", *j._creatinine(p.EGFR_MIN.value * r.uniform(0.35, 0.85)))
    elif variant == "inr":
        j.labs.pop("inr")
        inr_uln: float | None = r.choice((None, 1.1, 1.2))
        j._inr((inr_uln or p.INR_DEFAULT_ULN.value) * p.COAGULATION_MAX_ULN.value * r.uniform(1.12, 1.6), inr_uln)
    elif variant == "pt":
        j.labs.pop("pt")
        j._pt(p.COAGULATION_MAX_ULN.value * r.uniform(1.1, 1.6))
    else:  # G-CSF within two weeks before the neutrophil sample (or still going)
        j.gcsf = (-r.randint(13, 25), None if r.random() < 0.3 else -r.randint(0, p.GCSF_FREE_DAYS.value - 2))
    return ["ELIG-IN09"]


def _in10(j: Journey) -> list[str]:
    lab = j.labs["ana"][-1]
    value = j.r.choice(("1:40", "1:20", "negative", 40.0))
    lab.value = value
    lab.unit = "{titer}" if isinstance(value, float) else None
    return ["ELIG-IN10"]


def _in11(j: Journey) -> list[str]:
    j.ecog = j.r.choice((3, 3, 4))
    return ["ELIG-IN11"]


def _history_exclusion(rule: str) -> Injection:
    def inject(j: Journey) -> list[str]:
        assert j.history is not None
        j.history[_HISTORY_EXCLUSIONS[rule]] = True
        return [rule]

    return inject


def _ex06(j: Journey) -> list[str]:
    r = j.r
    variant = r.choice(("hiv", "syphilis", "hbv", "hbc", "hcv"))
    if variant in ("hiv", "syphilis"):
        j.labs[variant][-1].value = "positive" if r.random() < 0.8 else "equivocal"
    elif variant in ("hbv", "hbc"):
        j.labs["hbsag" if variant == "hbv" else "anti_hbc"][-1].value = "positive"
        j.labs.pop("hbv_dna", None)
        if r.random() < 0.6:
            j._put("hbv_dna", "42595-9", float(r.randint(200, 50000)), "[IU]/mL", 20.0, delay=(2 * 86400, 4 * 86400))
        else:
            j._put(
                "hbv_dna", "29615-2", float(r.randint(1000, 90000)), "{copies}/mL", 100.0, delay=(2 * 86400, 4 * 86400)
            )
    else:
        j.labs["anti_hcv"][-1].value = "positive"
        if r.random() < 0.5:
            j._put("hcv_rna", "11259-9", "positive", delay=(2 * 86400, 4 * 86400))
        else:
            j._put("hcv_rna", "11011-4", float(r.randint(500, 90000)), "[IU]/mL", 15.0, delay=(2 * 86400, 4 * 86400))
    return ["ELIG-EX06"]


def _missing(j: Journey) -> list[str]:
    r = j.r
    variant = r.choice(("lab", "lab", "uln", "hbv_dna", "hcv_rna", "assessment", "outdated"))
    if variant == "lab":
        j.labs.pop(r.choice(REQUIRED_LABS))
    elif variant == "uln":
        j.labs[r.choice(("alt", "ast", "total_bilirubin", "pt"))][-1].uln = None
    elif variant == "hbv_dna":
        j.labs["hbsag" if r.random() < 0.5 else "anti_hbc"][-1].value = "positive"
        j.labs.pop("hbv_dna", None)
    elif variant == "hcv_rna":
        j.labs["anti_hcv"][-1].value = "positive"
        j.labs.pop("hcv_rna", None)
    elif variant == "assessment":
        absent = r.choice(("sledai", "ecog", "eular", "history", "biopsy"))
        if absent == "sledai":
            j.sledai = None
        elif absent == "ecog":
            j.ecog = None
        elif absent == "eular":
            j.eular = None
        elif absent == "history":
            j.history = None
        else:
            j.biopsy_day = None
    else:  # enrolled more than 28 days after the screening assessments
        j.enroll_off = r.randint(p.SCREENING_WINDOW_DAYS.value + 12, p.SCREENING_WINDOW_DAYS.value + 27)
    return ["ELIG-MISSING"]


def _in08(j: Journey) -> list[str]:
    r = j.r
    variants = ["nobody signs", "signed after enrollment"]
    if j.minor:
        variants.append("no guardian")
    variant = r.choice(variants)
    if variant == "nobody signs":
        j.signatures = []
    elif variant == "no guardian":
        j.signatures = [s for s in j.signatures if s[0] != "guardian"]
    else:  # the guardian (or an adult participant) signs days after enrollment
        late = "guardian" if j.minor else "participant"
        j.signatures = [(s, (j.enroll_day + r.randint(1, 3)) if s == late else d, m) for s, d, m in j.signatures]
    return ["CONSENT-01", "ELIG-IN08"]


def _consent01(j: Journey) -> list[str]:
    r = j.r
    variants = ["pre-consent lab", "labs before signing"]
    if j.minor:
        variants.append("late guardian")
    variant = r.choice(variants)
    if variant == "pre-consent lab":
        day = j.c - r.randint(1, 5)
        lab = Lab("2890-2", float(r.randint(600, 4500)), "mg/g{creat}", None, 0, 5400).payload()
        j.extra.append(Ev(day * DAY + r.randint(480, 700), "ScreeningLabResulted", lab, 5400, "lis"))
    elif variant == "labs before signing":
        j.screening_off = 0
        j.lab_minute = r.randint(450, 540)
        j.consent_minute = max(j.consent_minute, 560)
        j.signatures = [(s, d, max(m, 560)) for s, d, m in j.signatures]
    else:
        first = j.c + min(j.screening_off, j.assess_off)
        j.signatures = [
            (s, first if s == "guardian" else d, 1000 if s == "guardian" else m) for s, d, m in j.signatures
        ]
    return ["CONSENT-01"]


def _consent02(j: Journey) -> list[str]:
    r = j.r
    variants = ["screening"] if j.screen_fail else ["screening", "treatment", "follow-up", "follow-up"]
    variant = r.choice(variants)
    if variant == "screening":
        j.screen_fail = False
        j.outcome = "withdrawn in screening"
        day = j.screening_day + 1
        j.extra.append(Ev(day * DAY + 600, "ConsentWithdrawn", {"reason": "guardian withdrew consent"}, 900, "edc"))
        lab = Lab("2160-0", 0.5, "mg/dL", None, 0, 0).payload()
        j.extra.append(Ev((day + 1) * DAY + 480, "ScreeningLabResulted", lab, 7200, "lis"))
        withdrawn = (day + 1) * DAY + 900
    elif variant == "treatment":
        day = j.enroll_day + 1
        j.extra.append(Ev(day * DAY + 600, "ConsentWithdrawn", {"reason": "guardian withdrew consent"}, 900, "edc"))
        withdrawn = (j.leuka_day + 1) * DAY + 900
        j.outcome = "withdrawn"
    else:
        candidates = j.visits[1:]
        visit = r.choice(candidates)
        day = visit.day - r.randint(1, 2)
        j.extra.append(Ev(day * DAY + 600, "ConsentWithdrawn", {"reason": "participant withdrew consent"}, 900, "edc"))
        withdrawn = visit.day * DAY + visit.minute + 120
        j.outcome = "withdrawn"
    j.final = [Ev(withdrawn, "ParticipantWithdrawn", {"reason": "consent withdrawn"}, 3600, "edc")]
    j.stop = withdrawn
    return ["CONSENT-02"]


def _seq01(j: Journey) -> list[str]:
    variant = j.r.choice(("none", "not eligible", "after enrollment"))
    if variant == "none":
        j.confirmed = False
    elif variant == "not eligible":
        j.eligible = False
    else:
        j.confirm_after_enrollment = True
    return ["SEQ-01"]


def _seq02(j: Journey) -> list[str]:
    r = j.r
    if j.screen_fail:
        if r.random() < 0.5:
            day = r.randint(j.c + 1, j.confirm_day - 1)
            j._relapse(natural=False, day=day)
            j.extra += j.relapses
            j.relapses = []
            return ["RELAPSE", "SEQ-02"]
        j.extra.append(Ev((j.confirm_day - 1) * DAY + 500, "LeukapheresisPerformed", {}, 3600, "ctl"))
        return ["SEQ-02"]
    variant = r.choice(("leukapheresis before enrollment", "no leukapheresis", "no lymphodepletion", "relapse"))
    if variant == "leukapheresis before enrollment":
        j.leuka_off = -1
        j.ld_off = r.randint(12, 18)
    elif variant == "no leukapheresis":
        j.has_leuka = False
    elif variant == "no lymphodepletion":
        j.has_ld = False
    else:
        day = r.randint(j.leuka_day + 1, j.ld_day - 1)
        j._relapse(natural=False, day=day)
        j.extra += j.relapses
        j.relapses = []
        return ["RELAPSE", "SEQ-02"]
    return ["SEQ-02"]


def _seq03(j: Journey) -> list[str]:
    r = j.r
    if r.random() < 0.5:  # a second bag the next day
        day = j.infusion_day + 1
    else:  # re-treatment: lymphodepletion again, then a second infusion
        ld = j.infusion_day + r.randint(30, 60)
        j.extra.append(Ev(ld * DAY + 510, "LymphodepletionAdministered", {"regimen": _REGIMEN}, 3600, "ctl"))
        day = ld + r.randint(3, 7)
    payload = j._infusion(r.uniform(0.9, 1.1), 2)
    j.extra.append(Ev(day * DAY + 640, "CarTInfused", payload, 3600, "ctl"))
    return ["SEQ-03"]


def _seq04(j: Journey) -> list[str]:
    low, high = p.INFUSION_DAYS_AFTER_LYMPHODEPLETION.value
    j.infusion_off = low - 1 if j.r.random() < 0.4 else j.r.randint(high + 2, high + 10)
    return ["SEQ-04"]


def _dose01(j: Journey) -> list[str]:
    tolerance = p.DOSE_TOLERANCE.value
    variant = j.r.choice(("low", "high", "other arm"))
    if variant == "low":
        j.dose_ratio = j.r.uniform(0.45, 1 - tolerance * 1.4)
    elif variant == "high":
        j.dose_ratio = j.r.uniform(1 + tolerance * 1.5, 2.2)
    else:
        j.dose_ratio = j.r.uniform(0.95, 1.05) * (2.0 if j.arm == "low_dose" else 0.5)
    return ["DOSE-01"]


def _visit01(j: Journey) -> list[str]:
    r = j.r
    windows = {w.code: w for w in SCHEDULE}
    inf = j.infusion_day
    late = [v for v in j.visits if v.code.startswith("M")
            and inf + windows[v.code].day + windows[v.code].window_days + 6 < CUTOFF_DAY - 1]  # fmt: skip
    if late and r.random() < 0.4:
        visit = r.choice(late)
        close = inf + windows[visit.code].day + windows[visit.code].window_days
        visit.day = close + r.randint(1, 5)
        j.quiet = (close + 1, visit.day)
        return ["VISIT-01"]
    visit = r.choice(j.visits)
    window = windows[visit.code]
    opens = inf + window.day - window.window_days
    visit.day = max(inf + 1, opens - r.randint(1, 3 if visit.code.startswith("D") else 10))
    j.quiet = None
    return ["VISIT-01"]


def _visit02(j: Journey) -> list[str]:
    candidates = j.visits[:-1]
    missed = j.r.sample(candidates, 2 if len(candidates) >= 3 and j.r.random() < 0.3 else 1)
    j.visits = [v for v in j.visits if v not in missed]
    return ["VISIT-02"] * len(missed)


def _severe(kind: str) -> Injection:
    def inject(j: Journey) -> list[str]:
        r = j.r
        grade = r.choice((3, 3, 4))
        serious = r.random() < 0.6
        if kind == "crs":
            j._ae(
                j.infusion_day + r.randint(1, 10), "Cytokine release syndrome", grade, serious=serious, crs_grade=grade
            )
            labels = ["SAFETY-CRS3"]
        else:
            term = "Immune effector cell-associated neurotoxicity syndrome"
            j._ae(j.infusion_day + r.randint(3, 12), term, grade, serious=serious, icans_grade=grade)
            labels = ["SAFETY-ICANS3"]
        return labels + (["SAFETY-SAE"] if serious else [])

    return inject


def _sae(j: Journey) -> list[str]:
    r = j.r
    term = r.choice(_SERIOUS_AES)
    if j.screen_fail:
        day = r.randint(j.c + 1, j.confirm_day - 1)
        j.extra.append(j._ae(day, "Lupus nephritis flare requiring hospitalisation", 3, serious=True))
        j.aes.clear()
    else:
        j._ae(j.infusion_day + r.randint(5, 90), term, r.choice((3, 3, 4)), serious=True)
    return ["SAFETY-SAE"]


def _relapse(j: Journey) -> list[str]:
    j._relapse(natural=False)
    return ["RELAPSE"]


_INJECTIONS: dict[str, Injection] = {
    "ELIG-IN01": _in01,
    "ELIG-IN02": _in02,
    "ELIG-IN03": _in03,
    "ELIG-IN04": _in04,
    "ELIG-IN05": _in05,
    "ELIG-IN06": _in06,
    "ELIG-IN08": _in08,
    "ELIG-IN09": _in09,
    "ELIG-IN10": _in10,
    "ELIG-IN11": _in11,
    **{rule: _history_exclusion(rule) for rule in _HISTORY_EXCLUSIONS},
    "ELIG-EX06": _ex06,
    "ELIG-MISSING": _missing,
    "CONSENT-01": _consent01,
    "CONSENT-02": _consent02,
    "SEQ-01": _seq01,
    "SEQ-02": _seq02,
    "SEQ-03": _seq03,
    "SEQ-04": _seq04,
    "DOSE-01": _dose01,
    "VISIT-01": _visit01,
    "VISIT-02": _visit02,
    "SAFETY-CRS3": _severe("crs"),
    "SAFETY-ICANS3": _severe("icans"),
    "SAFETY-SAE": _sae,
    "RELAPSE": _relapse,
}
assert set(_INJECTIONS) == set(RULE_IDS)


# -- the cohort ------------------------------------------------------------------------------------


@dataclass
class Summary:
    """What a simulation produced (for the stderr summary and the tests)."""

    participants: int = 0
    events: int = 0
    injected_participants: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def render(self, seed: int, rate: float) -> str:
        rate_s = f"{self.events / self.seconds:,.0f} events/s" if self.seconds > 0 else "-"
        lines = [
            f"simulated {STUDY_ID}, seed {seed}, deviation rate {rate:g}: {self.participants:,} participants, "
            f"{self.events:,} events ({self.events / max(self.participants, 1):.1f} per participant) "
            f"in {self.seconds:.1f} s ({rate_s})",
            "  outcomes: " + ", ".join(f"{name} {n:,}" for name, n in sorted(self.outcomes.items())),
            f"  participants with injected deviations: {self.injected_participants:,}",
            "  rule            injected  expected findings (with natural relapses)",
        ]
        for rule in RULE_IDS:
            if self.injected[rule] or self.expected[rule]:
                lines.append(f"  {rule:<14}  {self.injected[rule]:>8,}  {self.expected[rule]:>8,}")
        return "\n".join(lines) + "\n"


def _choose(master: random.Random, cursor: int, rate: float) -> tuple[tuple[str, ...], int]:
    """The rules to inject into the next participant (round-robin over the catalogue)."""
    if master.random() >= rate:
        return (), cursor
    first = RULE_IDS[cursor % len(RULE_IDS)]
    cursor += 1
    if first == "CONSENT-02" or master.random() >= 0.15:
        return (first,), cursor
    others = [r for r in RULE_IDS if r != "CONSENT-02" and _GROUP_OF[r] != _GROUP_OF[first]]
    return (first, master.choice(others)), cursor


def participants(count: int, seed: int, rate: float) -> Iterator[tuple[Journey, list[Ev]]]:
    """Each participant's journey and events (no watermarks), in participant order."""
    master = random.Random(seed)  # noqa: S311 (a simulation, not cryptography)
    cursor = seed % len(RULE_IDS)
    for index in range(count):
        rules, cursor = _choose(master, cursor, rate)
        screen_fail = master.random() < 0.15
        consent_day = master.randrange(RECRUITMENT_DAYS)
        rng = random.Random(master.getrandbits(64))  # noqa: S311
        journey = Journey(index, seed, rng, rules, screen_fail, consent_day)
        journey.inject()
        events = journey.events()
        if journey.quiet is not None and _not_quiet(journey, events):
            _visit_early(journey)
            events = journey.events()
        journey.labels += ["RELAPSE"] * sum(1 for e in events if e.etype == "RelapseReported" and e.tag == "natural")
        yield journey, events


def _not_quiet(j: Journey, events: list[Ev]) -> bool:
    """Whether anything but the late visit happens on the days its lateness must stay unproven."""
    assert j.quiet is not None
    first, last = j.quiet
    late = [e for e in events if first <= e.t // DAY <= last]
    return len(late) != 1 or not late[0].tag.startswith("visit:")


def _visit_early(j: Journey) -> None:
    assert j.quiet is not None
    windows = {w.code: w for w in SCHEDULE}
    visit = next(v for v in j.visits if v.day == j.quiet[1])
    window = windows[visit.code]
    visit.day = j.infusion_day + window.day - window.window_days - j.r.randint(1, 10)
    j.quiet = None


_SOURCES: dict[tuple[str, str, int], str] = {}


def _source(kind: str, site: str, actor: int) -> str:
    key = (kind, site, actor)
    text = _SOURCES.get(key)
    if text is None:
        suffix = site.lower().replace("-", "")
        system, who = {
            "edc": (f"edc.{suffix}", f"crc-{actor % 6 + 1:02d}"),
            "lis": (f"lis.{suffix}", f"tech-{actor % 12 + 1:02d}"),
            "pathology": (f"pathology.{suffix}", f"path-{actor % 3 + 1:02d}"),
            "ctl": (f"ctl.{suffix}", f"nurse-{actor % 4 + 1:02d}"),
        }[kind]
        text = _SOURCES[key] = _ENCODE({"system": system, "actor": who})
    return text


_TICK_SOURCE = _ENCODE({"system": "scheduler.trialguard"})
_LINE = (
    '{"event_id":"%s","event_type":"%s","schema_version":1,"study_id":"' + STUDY_ID + '","site_id":"%s",'
    '"participant_id":"%s","occurred_at":"%s","recorded_at":"%s","source":%s,"payload":%s}\n'
)


def lines(journey: Journey, events: list[Ev]) -> Iterator[tuple[int, str]]:
    """The participant's JSON lines (watermarks merged in), in their log order, with event times."""
    pid, site, seed, index = journey.pid, journey.site, journey.seed, journey.index
    ticks = list(journey.ticks(events))
    merged: list[tuple[int, Ev | None]] = [(day * DAY, None) for day in ticks]
    merged += [(e.t, e) for e in events]
    merged.sort(key=lambda item: item[0])  # stable; no event but a watermark falls on midnight
    for k, (t, e) in enumerate(merged):
        eid = event_id(seed, pid, k)
        occurred = _stamp(t * 60)
        if e is None:
            yield t, _LINE % (eid, "ClockTicked", site, pid, occurred, _stamp(t * 60 + 2), _TICK_SOURCE, "{}")
        else:
            source = _source(e.source, site, index + k if e.source == "lis" else index)
            recorded = _stamp(t * 60 + e.delay)
            yield t, _LINE % (eid, e.etype, site, pid, occurred, recorded, source, _ENCODE(e.payload))


# -- writing -----------------------------------------------------------------------------------------

_T_OFFSET = 1000 * DAY
"""Added to event times in sort keys so that they are never negative (biopsies come before day 0)."""
_BUCKET_MINUTES = 28 * DAY
_KEY = 21  # characters of the sort key: 8 time, 8 participant, 5 sequence


def simulate(
    count: int,
    seed: int,
    out: Path,
    labels_path: Path | None = None,
    rate: float = 0.3,
    *,
    progress: TextIO | None = None,
) -> Summary:
    """Write a cohort's events (JSON lines, log order) to ``out`` and its labels to ``labels_path``.

    Args:
        count: participants.
        seed: the seed: the same seed gives byte-identical files.
        out: the events file, written complete or not at all.
        labels_path: the ground truth: ``{participant_id: [rule ids, sorted, with repeats]}``.
        rate: the probability that a participant has a deviation injected.
        progress: where to report progress (a line per 10 % of participants), or None.

    Returns:
        What was written.
    """
    started = time.monotonic()
    summary = Summary()
    labels: dict[str, list[str]] = {}
    step = max(count // 10, 1)
    with tempfile.TemporaryDirectory(prefix=".simulate.", dir=out.parent) as scratch:
        buckets: dict[int, IO[str]] = {}
        try:
            for journey, events in participants(count, seed, rate):
                for k, (t, line) in enumerate(lines(journey, events)):
                    key = t + _T_OFFSET
                    bucket = buckets.get(key // _BUCKET_MINUTES)
                    if bucket is None:
                        name = os.path.join(scratch, f"{key // _BUCKET_MINUTES:05d}")
                        bucket = buckets[key // _BUCKET_MINUTES] = open(name, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
                    bucket.write(f"{key:08d}{journey.index:08d}{k:05d}{line}")
                    summary.events += 1
                summary.participants += 1
                summary.outcomes[_outcome(journey, events)] += 1
                if journey.rules:
                    summary.injected_participants += 1
                    summary.injected.update(journey.rules)
                summary.expected.update(journey.labels)
                labels[journey.pid] = sorted(journey.labels)
                if progress is not None and (journey.index + 1) % step == 0 and count >= 1000:
                    done = journey.index + 1
                    progress.write(f"simulate: {done * 100 // count}% ({done:,} of {count:,} participants, "
                                   f"{summary.events:,} events)\n")  # fmt: skip
                    progress.flush()
        finally:
            for bucket in buckets.values():
                bucket.close()
        if progress is not None and count >= 1000:
            progress.write(f"simulate: writing {summary.events:,} events in log order to {out}\n")
            progress.flush()
        with atomic_text(out) as f:
            for number in sorted(buckets):
                with open(os.path.join(scratch, f"{number:05d}"), encoding="utf-8") as bucket:
                    keyed = bucket.readlines()
                keyed.sort()
                f.writelines(line[_KEY:] for line in keyed)
    if labels_path is not None:
        with atomic_text(labels_path) as f:
            f.write(json.dumps(labels, sort_keys=True, indent=2) + "\n")
    summary.seconds = time.monotonic() - started
    return summary


def _outcome(journey: Journey, events: list[Ev]) -> str:
    if journey.outcome != "enrolled":
        return journey.outcome
    if journey.visits and journey.visits[-1].code == "M24":
        return "completed M24"
    return "in follow-up at cut-off"


def run(count: int, seed: int, out: str, labels: str | None, rate: float, *, stderr: TextIO) -> int:
    """``trialguard simulate``: 0 when the files were written, 2 for a usage or I/O error."""
    if count < 1:
        stderr.write("trialguard simulate: --participants must be at least 1\n")
        return 2
    if not -MAX_SEED <= seed <= MAX_SEED:
        stderr.write(f"trialguard simulate: --seed must be between -{MAX_SEED} and {MAX_SEED}\n")
        return 2
    if not 0.0 <= rate <= 1.0:
        stderr.write("trialguard simulate: --deviation-rate must be between 0 and 1\n")
        return 2
    paths = [Path(out)] + ([Path(labels)] if labels else [])
    if labels and Path(labels).resolve() == Path(out).resolve():
        stderr.write("trialguard simulate: --labels and --out must be different files\n")
        return 2
    for path in paths:
        if path.is_dir() or not path.parent.is_dir():
            stderr.write(f"trialguard simulate: {path}: not a file in an existing folder\n")
            return 2
    try:
        summary = simulate(count, seed, Path(out), Path(labels) if labels else None, rate, progress=stderr)
    except OSError as e:
        stderr.write(f"trialguard simulate: {e.filename or out}: {e.strerror or e}\n")
        return 2
    stderr.write(summary.render(seed, rate))
    return 0
