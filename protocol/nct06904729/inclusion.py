"""Inclusion criteria 1-11, decided at enrollment from what the log holds then.

Inclusion 7 (venous access) and the other judgements no data can decide are covered by the
investigator's EligibilityConfirmed (SEQ-01); they raise nothing by themselves. A criterion
whose data is absent raises ELIG-MISSING instead (screening.py), never a guess.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import ParticipantEnrolled
from protocol.clinical import age_in_years, ana_titre, is_positive, schwartz_egfr, uln_multiple
from protocol.model import Facts, Parameter, RuleSpec, deviation, facts_on
from protocol.nct06904729 import parameters as p
from protocol.nct06904729.informed_consent import consent_complete_at
from protocol.nct06904729.screening import ENROLLED, latest_in_window, numeric, screening_lab
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState

ACTIVE_LN_CLASSES = frozenset({"III", "IV", "III+V", "IV+V"})
"""Inclusion 3: active class III or IV lupus nephritis, with or without a membranous component."""


def consent_date(terms: Terms, state: ParticipantState, enrolled_at: dt.datetime) -> dt.date:
    """The day screening started: consent completed, else the participant's signature, else enrollment."""
    at = consent_complete_at(terms, state) or state.consent_signed_at.get("participant") or enrolled_at
    return at.date()


def _uln_multiple(
    terms: Terms, state: ParticipantState, lab: str, enrolled_at: dt.datetime, default_uln: float | None = None
) -> float | None:
    result = screening_lab(terms, state, lab, enrolled_at)
    if result is None or isinstance(result.payload.value, str):
        return None
    uln = result.payload.uln if result.payload.uln is not None else default_uln
    return None if uln is None else terms.rounded(uln_multiple(result.payload.value, uln))


def _immunosuppressants_over_6_months(terms: Terms, state: ParticipantState, enrolled_on: dt.date) -> int:
    if state.history is None:
        return 0
    agents = {
        t.agent.casefold()
        for t in state.history.payload.immunosuppressants
        if ((t.end or enrolled_on) - t.start).days > terms[p.REFRACTORY_MIN_DAYS]
    }
    return len(agents)


@facts_on("ParticipantEnrolled")
def inclusion_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, ParticipantEnrolled) or state.enrollment is not None:
        return {}  # eligibility is decided once, at the first enrollment
    at = event.occurred_at
    facts: Facts = {"arm": event.payload.arm}
    consented_on = consent_date(terms, state, at)
    if state.registration is not None:
        reg = state.registration.payload
        facts["age_at_consent"] = age_in_years(reg.birth_date, consented_on)
        facts["consent_date"] = consented_on.isoformat()
    if state.eular is not None:
        facts["ana_entry_met"] = state.eular.payload.ana_entry_met
        facts["eular_acr_score"] = state.eular.payload.score
    if state.biopsy is not None:
        biopsy_on = state.biopsy.occurred_at.date()
        facts["biopsy_class"] = state.biopsy.payload.isn_rps_class
        facts["biopsy_active_lesions"] = state.biopsy.payload.active_lesions
        facts["biopsy_active_class_iii_or_iv"] = (
            state.biopsy.payload.isn_rps_class in ACTIVE_LN_CLASSES and state.biopsy.payload.active_lesions
        )
        facts["biopsy_date"] = biopsy_on.isoformat()
        facts["biopsy_in_window"] = (
            consented_on - dt.timedelta(days=terms[p.BIOPSY_MAX_DAYS_BEFORE_CONSENT]) <= biopsy_on <= at.date()
        )
    if (sledai := latest_in_window(terms, state.sledai, at)) is not None:
        facts["sledai_2k"] = sledai.payload.score
    if state.history is not None:
        h = state.history.payload
        facts["immunosuppressants_over_6_months"] = _immunosuppressants_over_6_months(terms, state, at.date())
        facts["remission_achieved"] = h.remission_achieved
        facts["relapse_after_remission"] = h.relapse_after_remission
        facts["proteinuria_in_remission"] = h.proteinuria_in_remission
    if (cd19 := screening_lab(terms, state, "cd19", at)) is not None:
        value = cd19.payload.value
        facts["cd19_result"] = str(value)
        facts["cd19_positive"] = is_positive(value) if isinstance(value, str) else value > 0
    complete_at = consent_complete_at(terms, state)
    facts["consent_complete_at_enrollment"] = complete_at is not None and complete_at <= at
    facts["signed"] = sorted(state.consent_signed_at)
    facts.update(_organ_function(terms, state, at))
    if (ana := screening_lab(terms, state, "ana", at)) is not None:
        facts["ana_titre"] = ana_titre(ana.payload.value) or 0
    if (ecog := latest_in_window(terms, state.ecog, at)) is not None:
        facts["ecog"] = ecog.payload.score
    return facts


def _organ_function(terms: Terms, state: ParticipantState, at: dt.datetime) -> Facts:
    facts: Facts = {}
    for lab in ("lymphocytes", "wbc", "neutrophils", "hemoglobin"):
        if (value := numeric(screening_lab(terms, state, lab, at))) is not None:
            facts[lab] = terms.rounded(value)
    neutrophils = screening_lab(terms, state, "neutrophils", at)
    if neutrophils is not None:
        sampled_on = neutrophils.occurred_at.date()
        free_from = sampled_on - dt.timedelta(days=terms[p.GCSF_FREE_DAYS])
        facts["gcsf_within_14_days_of_neutrophils"] = any(
            g.payload.start <= sampled_on and (g.payload.end or sampled_on) >= free_from for g in state.gcsf
        )
    for lab, fact in (("alt", "alt_uln_multiple"), ("ast", "ast_uln_multiple"),
                      ("total_bilirubin", "bilirubin_uln_multiple"), ("pt", "pt_uln_multiple")):  # fmt: skip
        if (multiple := _uln_multiple(terms, state, lab, at)) is not None:
            facts[fact] = multiple
    if (inr := _uln_multiple(terms, state, "inr", at, default_uln=terms[p.INR_DEFAULT_ULN])) is not None:
        facts["inr_uln_multiple"] = inr
    facts["gilbert_syndrome"] = state.history is not None and state.history.payload.gilbert_syndrome
    creatinine = numeric(screening_lab(terms, state, "creatinine", at))
    if creatinine is not None and creatinine > 0 and state.registration is not None:
        facts["egfr_schwartz"] = terms.rounded(schwartz_egfr(state.registration.payload.height_cm, creatinine))
    return facts


def _eligibility(
    rule_id: str,
    reference: str,
    term: str,
    when: Any,
    evidence: tuple[str, ...],
    parameters: tuple[Parameter, ...],
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


CONSENT_DATE = (p.AGE_OF_CONSENT,)
"""What ``consent_date`` depends on: under the age of consent, consent is complete at the guardian's signature."""


ORGAN_FUNCTION_EVIDENCE = (
    "lymphocytes",
    "wbc",
    "neutrophils",
    "gcsf_within_14_days_of_neutrophils",
    "hemoglobin",
    "alt_uln_multiple",
    "ast_uln_multiple",
    "bilirubin_uln_multiple",
    "gilbert_syndrome",
    "egfr_schwartz",
    "inr_uln_multiple",
    "pt_uln_multiple",
)


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version: its limits compiled into the conditions."""
    return (
        _eligibility(
            "ELIG-IN01",
            "Inclusion 1",
            f"Enrolled outside the age range {terms[p.AGE_MIN]}-{terms[p.AGE_MAX]} years (age at consent)",
            (m.age_at_consent < terms[p.AGE_MIN]) | (m.age_at_consent > terms[p.AGE_MAX]),
            ("age_at_consent", "consent_date"),
            (p.AGE_MIN, p.AGE_MAX, *CONSENT_DATE),
        ),
        _eligibility(
            "ELIG-IN02",
            "Inclusion 2",
            "Enrolled without SLE by the 2019 EULAR/ACR classification criteria",
            (m.ana_entry_met == False) | (m.eular_acr_score < terms[p.EULAR_ACR_MIN_SCORE]),
            ("ana_entry_met", "eular_acr_score"),
            (p.EULAR_ACR_MIN_SCORE,),
        ),
        _eligibility(
            "ELIG-IN03",
            "Inclusion 3",
            "Enrolled without active class III or IV lupus nephritis on a biopsy within 6 months before screening",
            (m.biopsy_active_class_iii_or_iv == False) | (m.biopsy_in_window == False),
            ("biopsy_class", "biopsy_active_lesions", "biopsy_date", "biopsy_in_window", "consent_date"),
            (p.BIOPSY_MAX_DAYS_BEFORE_CONSENT, *CONSENT_DATE),
        ),
        _eligibility(
            "ELIG-IN04",
            "Inclusion 4",
            f"Enrolled with a SLEDAI-2K score below {terms[p.SLEDAI_MIN]}",
            m.sledai_2k < terms[p.SLEDAI_MIN],
            ("sledai_2k",),
            (p.SLEDAI_MIN, p.SCREENING_WINDOW_DAYS),
        ),
        _eligibility(
            "ELIG-IN05",
            "Inclusion 5",
            "Enrolled without refractory lupus nephritis",
            # not ((>= 2 agents > 6 months without remission, or relapse after remission)
            #      and proteinuria not in remission)
            (
                (
                    (m.immunosuppressants_over_6_months < terms[p.IMMUNOSUPPRESSANTS_MIN])
                    | (m.remission_achieved == True)
                )
                & (m.relapse_after_remission == False)
            )
            | (m.proteinuria_in_remission == True),
            (
                "immunosuppressants_over_6_months",
                "remission_achieved",
                "relapse_after_remission",
                "proteinuria_in_remission",
            ),
            (p.IMMUNOSUPPRESSANTS_MIN, p.REFRACTORY_MIN_DAYS),
        ),
        _eligibility(
            "ELIG-IN06",
            "Inclusion 6",
            "Enrolled without CD19-positive peripheral B cells by flow cytometry",
            m.cd19_positive == False,
            ("cd19_result",),
            (p.SCREENING_WINDOW_DAYS, p.EQUIVOCAL_IS_POSITIVE),
        ),
        deviation(
            "ELIG-IN08",
            category=Category.INFORMED_CONSENT,
            severity=Severity.IMPORTANT,
            reference="Inclusion 8",
            term="Enrolled without informed consent by the participant and, under 18, a guardian",
            when=ENROLLED & (m.consent_complete_at_enrollment == False),
            evidence=("signed", "age_at_consent"),
            parameters=(p.AGE_OF_CONSENT,),
        ),
        _eligibility(
            "ELIG-IN09",
            "Inclusion 9",
            "Enrolled with an organ-function result out of range",
            (m.lymphocytes < terms[p.LYMPHOCYTES_MIN])
            | (m.wbc < terms[p.WBC_MIN])
            | (m.neutrophils < terms[p.NEUTROPHILS_MIN])
            | (m.gcsf_within_14_days_of_neutrophils == True)
            | (m.hemoglobin < terms[p.HEMOGLOBIN_MIN])
            | (m.alt_uln_multiple > terms[p.TRANSAMINASE_MAX_ULN])
            | (m.ast_uln_multiple > terms[p.TRANSAMINASE_MAX_ULN])
            | ((m.gilbert_syndrome == False) & (m.bilirubin_uln_multiple > terms[p.BILIRUBIN_MAX_ULN]))
            | ((m.gilbert_syndrome == True) & (m.bilirubin_uln_multiple > terms[p.BILIRUBIN_MAX_ULN_GILBERT]))
            | (m.egfr_schwartz < terms[p.EGFR_MIN])
            | (m.inr_uln_multiple > terms[p.COAGULATION_MAX_ULN])
            | (m.pt_uln_multiple > terms[p.COAGULATION_MAX_ULN]),
            ORGAN_FUNCTION_EVIDENCE,
            (
                p.LYMPHOCYTES_MIN,
                p.WBC_MIN,
                p.NEUTROPHILS_MIN,
                p.HEMOGLOBIN_MIN,
                p.TRANSAMINASE_MAX_ULN,
                p.BILIRUBIN_MAX_ULN,
                p.BILIRUBIN_MAX_ULN_GILBERT,
                p.EGFR_MIN,
                p.COAGULATION_MAX_ULN,
                p.GCSF_FREE_DAYS,
                p.INR_DEFAULT_ULN,
                p.SCREENING_WINDOW_DAYS,
                p.FACT_DECIMALS,
            ),
        ),
        _eligibility(
            "ELIG-IN10",
            "Inclusion 10",
            f"Enrolled with an ANA titre below 1:{terms[p.ANA_MIN_TITRE]}",
            m.ana_titre < terms[p.ANA_MIN_TITRE],
            ("ana_titre",),
            (p.ANA_MIN_TITRE, p.SCREENING_WINDOW_DAYS),
        ),
        _eligibility(
            "ELIG-IN11",
            "Inclusion 11",
            f"Enrolled with an ECOG performance status above {terms[p.ECOG_MAX]}",
            m.ecog > terms[p.ECOG_MAX],
            ("ecog",),
            (p.ECOG_MAX, p.SCREENING_WINDOW_DAYS),
        ),
    )
