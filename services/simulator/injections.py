"""The injections of every other rule (consent, sequence, dose, visits, safety, relapse), the
registry of all of them, and ``inject``, which applies a participant's injections in timeline order.

Each injection changes one fact of a journey, as the rule table of tests/unit/test_rules.py does,
and returns the rule ids that change must raise: the labels are what was injected, never what the
protocol computes.
"""

from __future__ import annotations

from services.simulator.catalogue import GROUP_OF, REGIMEN, RULE_IDS, SERIOUS_AES, STAGES, WITHDRAWAL_REASONS
from services.simulator.clock import CUTOFF_DAY, DAY
from services.simulator.eligibility import ELIGIBILITY_INJECTIONS
from services.simulator.journey import Ev, Injection, Journey
from services.simulator.labs import Lab
from services.simulator.study import schedule, value_of


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
        j.extra.append(Ev(ld * DAY + 510, "LymphodepletionAdministered", {"regimen": REGIMEN}, 3600, "ctl"))
        day = ld + r.randint(3, 7)
    payload = j._infusion(r.uniform(0.9, 1.1), 2)
    j.extra.append(Ev(day * DAY + 640, "CarTInfused", payload, 3600, "ctl"))
    return ["SEQ-03"]


def _seq04(j: Journey) -> list[str]:
    low, high = value_of("infusion_days_after_lymphodepletion")
    j.infusion_off = low - 1 if j.r.random() < 0.4 else j.r.randint(high + 2, high + 10)
    return ["SEQ-04"]


def _dose01(j: Journey) -> list[str]:
    tolerance = value_of("dose_tolerance")
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
    windows = {w.code: w for w in schedule()}
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
    term = r.choice(SERIOUS_AES)
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


INJECTIONS: dict[str, Injection] = {
    **ELIGIBILITY_INJECTIONS,
    "ELIG-IN08": _in08,
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
assert set(INJECTIONS) == set(RULE_IDS)


def inject(j: Journey) -> None:
    """Apply the journey's injections in timeline order, then plan what follows the infusion.

    The follow-up is planned just before the first injection that changes it (or after them all),
    so that an injection before it moves what hangs off the infusion, and one after it finds the
    visits and adverse events to change.
    """
    ordered = sorted(j.rules, key=lambda rule: STAGES.index(GROUP_OF[rule]))
    follow_up_planned = False
    for rule in ordered:
        stage = STAGES.index(GROUP_OF[rule])
        if stage >= STAGES.index("withdrawal") and not follow_up_planned:
            j._plan_follow_up()
            follow_up_planned = True
        j.labels += INJECTIONS[rule](j)
    if not follow_up_planned:
        j._plan_follow_up()
    if not j.rules and j.enrolled and j.r.random() < 0.07:
        _natural_withdrawal(j)


def _natural_withdrawal(j: Journey) -> None:
    """A withdrawal that is no deviation (no consent withdrawal is followed by study procedures)."""
    r = j.r
    day = r.randint(j.enroll_day + 1, max(j.enroll_day + 1, j.horizon()))
    at = day * DAY + r.randint(600, 900)
    reason = r.choice(WITHDRAWAL_REASONS)
    j.final = []
    if r.random() < 0.5:
        j.final.append(Ev(at - 15, "ConsentWithdrawn", {"reason": "guardian withdrew consent"}, 600, "edc"))
    j.final.append(Ev(at, "ParticipantWithdrawn", {"reason": reason}, j._delay(600, 86400), "edc"))
    j.stop = j.final[0].t
    j.outcome = "withdrawn"
