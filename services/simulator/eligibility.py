"""The eligibility injections (ELIG-IN*, ELIG-EX*, ELIG-MISSING): each changes one screening fact
of a journey so that exactly its criterion fails, the way the rule table of tests/unit/test_rules.py
does."""

from __future__ import annotations

import datetime as dt

from services.simulator.catalogue import HISTORY_EXCLUSIONS
from services.simulator.clock import as_date
from services.simulator.journey import Injection, Journey
from services.simulator.study import screening_labs, value_of


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
    consent = as_date(j.c)
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
        threshold = value_of(f"{variant}_min")
        lab = j.labs[variant][-1]
        loinc, lab.value, lab.unit = j._count((lab.loinc, lab.loinc), threshold * r.uniform(0.3, 0.8))
    elif variant == "hemoglobin":
        lab = j.labs["hemoglobin"][-1]
        lab.loinc, lab.value, lab.unit = j._hemoglobin(value_of("hemoglobin_min") * r.uniform(0.65, 0.9))
    elif variant in ("alt", "ast"):
        lab = j.labs[variant][-1]
        assert lab.uln is not None
        lab.value = float(round(lab.uln * value_of("transaminase_max_uln") * r.uniform(1.12, 2.5)))
    elif variant == "bilirubin":
        assert j.history is not None
        limit = value_of("bilirubin_max_uln_gilbert" if j.history["gilbert_syndrome"] else "bilirubin_max_uln")
        j.labs.pop("total_bilirubin")
        loinc, value, unit, uln = j._bilirubin(limit * r.uniform(1.15, 1.9))
        j._put("total_bilirubin", loinc, value, unit, uln)
    elif variant == "egfr":
        j.labs.pop("creatinine")
        j._put("creatinine", *j._creatinine(value_of("egfr_min") * r.uniform(0.35, 0.85)))
    elif variant == "inr":
        j.labs.pop("inr")
        inr_uln: float | None = r.choice((None, 1.1, 1.2))
        limit = (inr_uln or value_of("inr_default_uln")) * value_of("coagulation_max_uln")
        j._inr(limit * r.uniform(1.12, 1.6), inr_uln)
    elif variant == "pt":
        j.labs.pop("pt")
        j._pt(value_of("coagulation_max_uln") * r.uniform(1.1, 1.6))
    else:  # G-CSF within two weeks before the neutrophil sample (or still going)
        j.gcsf = (-r.randint(13, 25), None if r.random() < 0.3 else -r.randint(0, value_of("gcsf_free_days") - 2))
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
        j.history[HISTORY_EXCLUSIONS[rule]] = True
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
        j.labs.pop(r.choice(screening_labs()))
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
        j.enroll_off = r.randint(value_of("screening_window_days") + 12, value_of("screening_window_days") + 27)
    return ["ELIG-MISSING"]


ELIGIBILITY_INJECTIONS: dict[str, Injection] = {
    "ELIG-IN01": _in01,
    "ELIG-IN02": _in02,
    "ELIG-IN03": _in03,
    "ELIG-IN04": _in04,
    "ELIG-IN05": _in05,
    "ELIG-IN06": _in06,
    "ELIG-IN09": _in09,
    "ELIG-IN10": _in10,
    "ELIG-IN11": _in11,
    **{rule: _history_exclusion(rule) for rule in HISTORY_EXCLUSIONS},
    "ELIG-EX06": _ex06,
    "ELIG-MISSING": _missing,
}
"""Every eligibility rule id but ELIG-IN08 (consent), which ``injections`` handles with CONSENT-01."""
