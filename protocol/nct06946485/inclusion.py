"""Inclusion criteria 1-6 of the record, decided at enrollment. Criterion 7 (contraception) is cut
off in the source and no event carries it: not encoded (kit/criteria.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import ParticipantEnrolled, Treatment
from protocol.clinical import age_in_years, cockcroft_gault_crcl, creatinine_mg_dl, uln_multiple
from protocol.drugs import in_atc_group
from protocol.model import Facts, Parameter, RuleSpec, deviation, facts_on
from protocol.nct06946485 import parameters as p
from protocol.nct06946485.screening import ENROLLED, latest_in_window, numeric, screening_lab
from protocol.nct06946485.terms import Terms
from protocol.state import ParticipantState

GLUCOCORTICOIDS = frozenset({"prednisone", "prednisolone", "methylprednisolone", "dexamethasone", "hydrocortisone"})
GLUCOCORTICOID_ATC = "H02AB"
"""Glucocorticoids by name or ATC group H02AB (WHO ATC index)."""
CYCLOPHOSPHAMIDE = frozenset({"cyclophosphamide"})
LISTED_IMMUNOSUPPRESSANTS = frozenset(
    {
        "hydroxychloroquine",
        "chloroquine",
        "antimalarials",
        "azathioprine",
        "mycophenolate mofetil",
        "methotrexate",
        "leflunomide",
        "tacrolimus",
        "cyclosporine a",
        "cyclosporine",
        "rituximab",
        "belimumab",
        "telitacicept",
    }
)
"""Inclusion 4's list: antimalarials, azathioprine, mycophenolate mofetil, methotrexate, leflunomide,
tacrolimus, cyclosporine A, and the biologics it names (rituximab, belimumab, telitacicept). A
biologic it does not name is not counted: the record's "e.g." is not a list to extend."""


def consent_on(state: ParticipantState, enrolled_at: dt.datetime) -> dt.date:
    """The day screening started: the participant's consent, else the enrollment."""
    return (state.consent_signed_at.get("participant") or enrolled_at).date()


def _mg_per_kg_day(treatment: Treatment, weight_kg: float | None) -> float | None:
    if treatment.dose is None:
        return None
    if treatment.dose_unit == "mg/kg/d":
        return treatment.dose
    if treatment.dose_unit == "mg/d" and weight_kg:
        return treatment.dose / weight_kg
    return None


def _refractory_facts(terms: Terms, state: ParticipantState, enrolled_on: dt.date) -> Facts:
    if state.history is None:
        return {}
    h = state.history.payload
    weight = state.registration.payload.weight_kg if state.registration else None
    named = [(t, t.agent.casefold()) for t in h.immunosuppressants]
    steroid_doses = [
        d
        for t, name in named
        if name in GLUCOCORTICOIDS or in_atc_group(t.atc_code, GLUCOCORTICOID_ATC)
        if (d := _mg_per_kg_day(t, weight)) is not None
    ]
    long_enough = [
        name
        for t, name in named
        if name in LISTED_IMMUNOSUPPRESSANTS and ((t.end or enrolled_on) - t.start).days > terms[p.REFRACTORY_MIN_DAYS]
    ]
    glucocorticoid = max(steroid_doses, default=0.0)
    facts: Facts = {
        "glucocorticoid_mg_per_kg_day": terms.rounded(glucocorticoid),
        "cyclophosphamide_given": any(name in CYCLOPHOSPHAMIDE for _, name in named),
        "listed_immunosuppressants_over_6_months": sorted(set(long_enough)),
        "remission_achieved": h.remission_achieved,
        "relapse_after_remission": h.relapse_after_remission,
    }
    facts["conventional_therapy"] = (
        glucocorticoid >= terms[p.GLUCOCORTICOID_MIN] and bool(facts["cyclophosphamide_given"]) and bool(long_enough)
    )
    return facts


def _uln(
    terms: Terms, state: ParticipantState, lab: str, at: dt.datetime, default: float | None = None
) -> float | None:
    result = screening_lab(terms, state, lab, at)
    if result is None or isinstance(result.payload.value, str):
        return None
    uln = result.payload.uln if result.payload.uln is not None else default
    return None if uln is None else terms.rounded(uln_multiple(result.payload.value, uln))


def _organ_function(terms: Terms, state: ParticipantState, at: dt.datetime) -> Facts:
    facts: Facts = {}
    for lab in ("wbc", "neutrophils", "hemoglobin", "lvef"):
        if (value := numeric(screening_lab(terms, state, lab, at))) is not None:
            facts[lab] = terms.rounded(value)
    if (neutrophils := screening_lab(terms, state, "neutrophils", at)) is not None:
        sampled_on = neutrophils.occurred_at.date()
        free_from = sampled_on - dt.timedelta(days=terms[p.CSF_FREE_DAYS])
        facts["csf_within_2_weeks_of_neutrophils"] = any(
            c.payload.start <= sampled_on and (c.payload.end or sampled_on) >= free_from for c in state.csf
        )
    for lab, fact in (("alt", "alt_uln_multiple"), ("ast", "ast_uln_multiple"),
                      ("total_bilirubin", "bilirubin_uln_multiple"), ("pt", "pt_uln_multiple")):  # fmt: skip
        if (multiple := _uln(terms, state, lab, at)) is not None:
            facts[fact] = multiple
    if (inr := _uln(terms, state, "inr", at, terms[p.INR_DEFAULT_ULN])) is not None:
        facts["inr_uln_multiple"] = inr
    facts["gilbert_syndrome"] = state.history is not None and state.history.payload.gilbert_syndrome
    creatinine = screening_lab(terms, state, "creatinine", at)
    if creatinine is not None and state.registration is not None and isinstance(creatinine.payload.value, float | int):
        reg = state.registration.payload
        mg_dl = creatinine_mg_dl(creatinine.payload.value, creatinine.payload.unit)
        age = age_in_years(reg.birth_date, creatinine.occurred_at.date())
        if mg_dl > 0 and 0 <= age < 140:
            facts["crcl_cockcroft_gault"] = terms.rounded(cockcroft_gault_crcl(age, reg.weight_kg, reg.sex, mg_dl))
    return facts


@facts_on("ParticipantEnrolled")
def inclusion_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, ParticipantEnrolled) or state.enrollment is not None:
        return {}
    at = event.occurred_at
    consented_on = consent_on(state, at)
    facts: Facts = {"consent_date": consented_on.isoformat()}
    if state.registration is not None:
        facts["age_at_consent"] = age_in_years(state.registration.payload.birth_date, consented_on)
    if state.eular is not None:
        facts["ana_entry_met"] = state.eular.payload.ana_entry_met
        facts["eular_acr_score"] = state.eular.payload.score
    if (sledai := latest_in_window(terms, state.sledai, at)) is not None:
        facts["sledai_2k"] = sledai.payload.score
    if (bilag := latest_in_window(terms, state.bilag, at)) is not None:
        grades = [g for name, g in bilag.payload if name != "version"]
        facts["bilag_a_count"] = grades.count("A")
        facts["bilag_b_count"] = grades.count("B")
    facts.update(_refractory_facts(terms, state, at.date()))
    facts.update(_organ_function(terms, state, at))
    return facts


def _eligibility(
    rule_id: str, reference: str, term: str, when: Any, evidence: tuple[str, ...], parameters: tuple[Parameter, ...]
) -> RuleSpec:
    return deviation(
        rule_id,
        category=Category.ELIGIBILITY,
        severity=Severity.IMPORTANT,
        reference=reference,
        term=term,
        when=ENROLLED & when,
        evidence=evidence,
        parameters=parameters,
    )


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version: its limits compiled into the conditions."""
    return (
        _eligibility(
            "ELIG-IN01",
            "Inclusion 5",
            f"Enrolled outside the age range {terms[p.AGE_MIN]}-{terms[p.AGE_MAX]} years (age at consent)",
            (m.age_at_consent < terms[p.AGE_MIN]) | (m.age_at_consent > terms[p.AGE_MAX]),
            ("age_at_consent", "consent_date"),
            (p.AGE_MIN, p.AGE_MAX),
        ),
        _eligibility(
            "ELIG-IN02",
            "Inclusion 1",
            "Enrolled without SLE by the 2019 EULAR/ACR classification criteria",
            (m.ana_entry_met == False) | (m.eular_acr_score < terms[p.EULAR_ACR_MIN_SCORE]),
            ("ana_entry_met", "eular_acr_score"),
            (p.EULAR_ACR_MIN_SCORE,),
        ),
        _eligibility(
            "ELIG-IN03",
            "Inclusion 3",
            "Enrolled without one BILAG-2004 grade A or two grade B organ domains",
            (m.bilag_a_count < terms[p.BILAG_A_MIN]) & (m.bilag_b_count < terms[p.BILAG_B_MIN]),
            ("bilag_a_count", "bilag_b_count"),
            (p.BILAG_A_MIN, p.BILAG_B_MIN, p.SCREENING_WINDOW_DAYS),
        ),
        _eligibility(
            "ELIG-IN04",
            "Inclusion 2",
            f"Enrolled with a SLEDAI-2000 score of {terms[p.SLEDAI_MIN] - 1} or less",
            m.sledai_2k < terms[p.SLEDAI_MIN],
            ("sledai_2k",),
            (p.SLEDAI_MIN, p.SCREENING_WINDOW_DAYS),
        ),
        _eligibility(
            "ELIG-IN05",
            "Inclusion 4",
            "Enrolled without failure of conventional therapy or relapse after remission",
            ((m.conventional_therapy == False) | (m.remission_achieved == True)) & (m.relapse_after_remission == False),
            (
                "glucocorticoid_mg_per_kg_day",
                "cyclophosphamide_given",
                "listed_immunosuppressants_over_6_months",
                "remission_achieved",
                "relapse_after_remission",
            ),
            (p.GLUCOCORTICOID_MIN, p.REFRACTORY_MIN_DAYS, p.FACT_DECIMALS),
        ),
        _eligibility(
            "ELIG-IN06",
            "Inclusion 6",
            "Enrolled with an organ-function result out of range",
            (m.wbc < terms[p.WBC_MIN])
            | (m.neutrophils < terms[p.NEUTROPHILS_MIN])
            | (m.csf_within_2_weeks_of_neutrophils == True)
            | (m.hemoglobin < terms[p.HEMOGLOBIN_MIN])
            | (m.alt_uln_multiple > terms[p.TRANSAMINASE_MAX_ULN])
            | (m.ast_uln_multiple > terms[p.TRANSAMINASE_MAX_ULN])
            | ((m.gilbert_syndrome == False) & (m.bilirubin_uln_multiple > terms[p.BILIRUBIN_MAX_ULN]))
            | ((m.gilbert_syndrome == True) & (m.bilirubin_uln_multiple > terms[p.BILIRUBIN_MAX_ULN_GILBERT]))
            | (m.crcl_cockcroft_gault < terms[p.CRCL_MIN])
            | (m.inr_uln_multiple > terms[p.COAGULATION_MAX_ULN])
            | (m.pt_uln_multiple > terms[p.COAGULATION_MAX_ULN])
            | (m.lvef < terms[p.LVEF_MIN]),
            (
                "wbc",
                "neutrophils",
                "csf_within_2_weeks_of_neutrophils",
                "hemoglobin",
                "alt_uln_multiple",
                "ast_uln_multiple",
                "bilirubin_uln_multiple",
                "gilbert_syndrome",
                "crcl_cockcroft_gault",
                "inr_uln_multiple",
                "pt_uln_multiple",
                "lvef",
            ),
            (
                p.WBC_MIN,
                p.NEUTROPHILS_MIN,
                p.HEMOGLOBIN_MIN,
                p.TRANSAMINASE_MAX_ULN,
                p.BILIRUBIN_MAX_ULN,
                p.BILIRUBIN_MAX_ULN_GILBERT,
                p.CRCL_MIN,
                p.COAGULATION_MAX_ULN,
                p.LVEF_MIN,
                p.CSF_FREE_DAYS,
                p.INR_DEFAULT_ULN,
                p.SCREENING_WINDOW_DAYS,
                p.FACT_DECIMALS,
            ),
        ),
    )
