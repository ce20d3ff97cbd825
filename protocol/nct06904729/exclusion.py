"""Exclusion criteria 1-10: one rule id per exclusion number, decided at enrollment.

Exclusion 11 (the investigator's judgement) is covered by EligibilityConfirmed (SEQ-01).
"""

from __future__ import annotations

from typing import Any

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import ParticipantEnrolled
from protocol.model import Facts, Parameter, RuleSpec, deviation, facts_on
from protocol.nct06904729.parameters import EQUIVOCAL_IS_POSITIVE, SCREENING_WINDOW_DAYS
from protocol.nct06904729.screening import ENROLLED, detected, screening_lab
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState

INFECTION_SCREENS = ("hbsag", "anti_hbc", "hbv_dna", "anti_hcv", "hcv_rna", "hiv", "syphilis")


@facts_on("ParticipantEnrolled")
def exclusion_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not isinstance(event, ParticipantEnrolled) or state.enrollment is not None:
        return {}  # eligibility is decided once, at the first enrollment
    facts: Facts = {}
    if state.history is not None:
        facts.update(state.history.payload.model_dump(exclude={"immunosuppressants", "remission_achieved",
                                                                "relapse_after_remission", "proteinuria_in_remission",
                                                                "gilbert_syndrome"}))  # fmt: skip
    for screen in INFECTION_SCREENS:
        result = screening_lab(terms, state, screen, event.occurred_at)
        if result is not None:
            facts[f"{screen}_detected"] = detected(result)
    return facts


def _exclusion(
    number: int, term: str, when: Any, evidence: tuple[str, ...], parameters: tuple[Parameter, ...] = ()
) -> RuleSpec:
    return deviation(
        f"ELIG-EX{number:02d}",
        category=Category.ELIGIBILITY,
        severity=Severity.IMPORTANT,
        reference=f"Exclusion {number}",
        term=term,
        when=ENROLLED & when,
        evidence=evidence,
        parameters=parameters,
    )


def _history(number: int, flag: str, term: str) -> RuleSpec:
    return _exclusion(number, term, getattr(m, flag) == True, (flag,))


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version (none compares with a parameter value)."""
    return (
        _history(1, "kidney_transplant", "Enrolled after a kidney transplant"),
        _history(2, "serious_drug_allergy", "Enrolled with a serious drug allergy"),
        _history(3, "uncontrolled_infection", "Enrolled with an uncontrolled infection"),
        _history(4, "severe_organ_dysfunction", "Enrolled with severe organ dysfunction"),
        _history(5, "congenital_ig_deficiency", "Enrolled with a congenital immunoglobulin deficiency"),
        _exclusion(
            6,
            "Enrolled with an active HBV or HCV infection, HIV or syphilis",
            # 6.1 HBsAg or anti-HBc positive with HBV DNA above normal; 6.2 anti-HCV positive with HCV
            # RNA above normal; 6.3 HIV antibody positive; 6.4 syphilis positive.
            (((m.hbsag_detected == True) | (m.anti_hbc_detected == True)) & (m.hbv_dna_detected == True))
            | ((m.anti_hcv_detected == True) & (m.hcv_rna_detected == True))
            | (m.hiv_detected == True)
            | (m.syphilis_detected == True),
            tuple(f"{s}_detected" for s in INFECTION_SCREENS),
            (SCREENING_WINDOW_DAYS, EQUIVOCAL_IS_POSITIVE),
        ),
        _history(7, "malignancy_within_5y", "Enrolled with a malignancy diagnosed in the last five years"),
        _history(
            8, "severe_cns_or_psychiatric", "Enrolled with severe CNS disease, mental illness or cognitive dysfunction"
        ),
        _history(9, "other_trial_within_3m", "Enrolled within 3 months of another clinical trial"),
        _history(10, "prior_car_t", "Enrolled after a previous CAR-T therapy"),
    )
