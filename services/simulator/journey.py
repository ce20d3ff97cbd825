"""One participant's journey through the trial: drawn clean from their own generator (registration,
consent, biopsy, screening, confirmation, treatment, follow-up), then changed by the injections,
then turned into planned events in the participant's log order."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from services.simulator.catalogue import GROWTH, IMMUNOSUPPRESSANTS, MILD_AES, REGIMEN, SCREEN_FAILURE_RULES
from services.simulator.clock import CUTOFF_DAY, DAY, TICK_EVERY_DAYS, as_date, completed_years, date_text
from services.simulator.labs import ScreeningLabs
from services.simulator.study import schedule, target_cells_per_kg, value_of


class Ev:
    """One planned event: minutes since the study start, type, payload, recording delay (s), source."""

    __slots__ = ("delay", "etype", "payload", "source", "t", "tag")

    def __init__(self, t: int, etype: str, payload: dict[str, Any], delay: int, source: str, tag: str = "") -> None:
        self.t, self.etype, self.payload, self.delay, self.source, self.tag = t, etype, payload, delay, source, tag


@dataclass
class Visit:
    """A follow-up visit of the schedule: its code, day and minute of the day."""

    code: str
    day: int
    minute: int


class Journey(ScreeningLabs):
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
        self.history = self._clean_history()
        self.gcsf: tuple[int, int | None] | None = None  # start, end: days relative to the neutrophil sample
        if r.random() < 0.15:
            self.gcsf = (-r.randint(60, 180), -r.randint(30, 59))
        self.other_meds = r.random() < 0.6
        self.labs = {}
        self._clean_labs()
        if self.screen_fail:
            self._screen_failure_reason()

    def _set_age(self, age_days: float) -> None:
        self.birth = as_date(self.c) - dt.timedelta(days=round(age_days))
        self.minor = completed_years(self.birth, as_date(self.c)) < value_of("age_of_consent")
        self.height, self.weight = self._body(age_days / 365.25)

    def _body(self, age: float) -> tuple[float, float]:
        for (a0, *lo), (a1, *hi) in itertools.pairwise(GROWTH):
            if a0 <= age <= a1 or a1 == GROWTH[-1][0]:
                f = min(max((age - a0) / (a1 - a0), 0.0), 1.0)
                row = [x + (y - x) * f for x, y in zip(lo, hi, strict=True)]
                break
        male = self.sex == "M"
        height = row[1 if male else 0] * self.r.gauss(1.0, 0.04)
        weight = row[3 if male else 2] * min(max(self.r.gauss(1.0, 0.13), 0.75), 1.5)
        return round(height, 1), round(weight, 1)

    def _clean_history(self) -> dict[str, Any]:
        r = self.r
        consent = as_date(self.c)
        agents = r.sample(IMMUNOSUPPRESSANTS[:6], r.randint(2, 3))
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
        for window in schedule():
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
            term, low, high = r.choice(MILD_AES)
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
            med = {"drug_class": "G-CSF", "agent": "filgrastim", "start": date_text(sampled + start),
                   "end": None if end is None else date_text(sampled + end)}  # fmt: skip
            add(Ev(at + 20, "ConcomitantMedicationRecorded", med, 7200, edc))
        if self.other_meds:
            med = {"drug_class": "corticosteroid", "agent": "prednisone", "start": date_text(self.c - 400), "end": None}
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
            add(Ev(self.ld_day * DAY + 510, "LymphodepletionAdministered", {"regimen": REGIMEN}, 3600, "ctl"))
        add(Ev(self.infusion_day * DAY + 630, "CarTInfused", self._infusion(self.dose_ratio, 1), 3600, "ctl"))
        for visit in self.visits:
            add(Ev(visit.day * DAY + visit.minute, "FollowUpVisitCompleted", {"visit": visit.code},
                   r.randint(1800, 8 * 3600), edc, f"visit:{visit.code}"))  # fmt: skip
        ev += self.aes
        ev += self.relapses
        ev += self.extra
        return self._finish(ev)

    def _infusion(self, ratio: float, number: int) -> dict[str, Any]:
        target = target_cells_per_kg(self.arm)
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


Injection = Callable[[Journey], list[str]]
"""Changes one fact of a journey; returns the rule ids the change must raise (with repeats)."""
