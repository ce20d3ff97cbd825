"""Screening labs as real laboratories send them: the participant's laboratory picks SI or
conventional units, a cell count unit and the LOINC codes it reports under, and each result comes
with its own upper limit of normal where the criterion reads one."""

from __future__ import annotations

import random
from typing import Any


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


class ScreeningLabs:
    """The lab generators of a journey (mixed into ``Journey``, which draws the attributes below).

    Kept apart from the journey because they are the one place that knows units, codes and
    reference ranges; the injections call them too, to put a result out of range in the same
    laboratory's units.
    """

    r: random.Random
    labs: dict[str, list[Lab]]
    site: str
    height: float
    history: dict[str, Any] | None
    si: bool
    count_unit: str
    hb_unit: str

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
