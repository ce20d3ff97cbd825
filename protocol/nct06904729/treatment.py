"""Treatment: eligibility confirmation before enrollment, the order of leukapheresis,
lymphodepletion and infusion, one infusion only, its timing and its dose."""

from __future__ import annotations

import datetime as dt

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import CarTInfused, ParticipantEnrolled, RelapseReported
from protocol.clinical import cells_per_kg
from protocol.model import Facts, OncePer, RuleSpec, deviation, facts_on
from protocol.nct06904729 import parameters as p
from protocol.nct06904729.design import ARM_TARGETS, STEPS
from protocol.nct06904729.screening import ENROLLED
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState


def _done_by(state: ParticipantState, step: str, at: dt.datetime) -> bool:
    """Whether the log shows ``step`` done at or before ``at``."""
    done_at = {
        "ParticipantEnrolled": state.enrollment.occurred_at if state.enrollment else None,
        "LeukapheresisPerformed": state.leukapheresis_at,
        "LymphodepletionAdministered": state.lymphodepletion_at,
    }[step]
    return done_at is not None and done_at <= at


@facts_on("ParticipantEnrolled", "RelapseReported", *(step.event_type for step in STEPS))
def treatment_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    at = event.occurred_at
    if isinstance(event, ParticipantEnrolled):
        if state.enrollment is not None:
            return {}  # eligibility is decided once, at the first enrollment
        confirmation = state.eligibility
        confirmed = confirmation is not None and confirmation.payload.eligible and confirmation.occurred_at <= at
        facts: Facts = {"eligibility_confirmed": confirmed}
        if confirmation is not None:
            facts["eligibility_confirmed_eligible"] = confirmation.payload.eligible
            facts["eligibility_confirmed_at"] = confirmation.occurred_at.isoformat()
        return facts
    if isinstance(event, RelapseReported):
        return {"relapse_before_infusion": not any(i <= at for i in state.infusions_at)}
    if event.event_type not in terms.after:
        return {}
    facts = {
        "step": event.event_type,
        "step_at": at.isoformat(),
        "enrolled_before": _done_by(state, "ParticipantEnrolled", at),
        "requires": terms.after[event.event_type],
        "required_step_before": _done_by(state, terms.after[event.event_type], at),
    }
    if isinstance(event, CarTInfused):
        facts.update(_infusion_facts(terms, state, event))
    return facts


def _infusion_facts(terms: Terms, state: ParticipantState, event: CarTInfused) -> Facts:
    facts: Facts = {"infusion_number": len(state.infusions_at) + 1}
    if state.lymphodepletion_at is not None:
        facts["lymphodepletion_at"] = state.lymphodepletion_at.isoformat()
        facts["days_after_lymphodepletion"] = (event.occurred_at.date() - state.lymphodepletion_at.date()).days
    if state.enrollment is not None:
        arm = state.enrollment.payload.arm
        dose = cells_per_kg(event.payload.total_cells, event.payload.weight_kg)
        facts["arm"] = arm
        facts["cells_per_kg"] = terms.rounded(dose)
        facts["target_cells_per_kg"] = terms.target_cells_per_kg[arm]
        facts["dose_ratio"] = terms.rounded(dose / terms.target_cells_per_kg[arm])
    return facts


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version: its infusion window and dose tolerance compiled into the conditions."""
    first_day, last_day = terms[p.INFUSION_DAYS_AFTER_LYMPHODEPLETION]
    tolerance = terms[p.DOSE_TOLERANCE]
    low_dose_ratio, high_dose_ratio = terms.rounded(1 - tolerance), terms.rounded(1 + tolerance)
    return (
        deviation(
            "SEQ-01",
            category=Category.STUDY_PROCEDURE,
            severity=Severity.IMPORTANT,
            reference="Eligibility criteria",
            term="Enrolled without the investigator's confirmation of eligibility",
            when=ENROLLED & (m.eligibility_confirmed == False),
            evidence=("eligibility_confirmed_eligible", "eligibility_confirmed_at"),
        ),
        deviation(
            "SEQ-02",
            category=Category.STUDY_PROCEDURE,
            severity=Severity.IMPORTANT,
            reference="Study design: treatment sequence",
            term="Treatment step out of order (before enrollment or before the step it depends on)",
            when=(m.enrolled_before == False) | (m.required_step_before == False) | (m.relapse_before_infusion == True),
            evidence=(
                "step",
                "step_at",
                "enrolled_before",
                "requires",
                "required_step_before",
                "relapse_before_infusion",
            ),
            once_per=OncePer.TRIGGER,
        ),
        deviation(
            "SEQ-03",
            category=Category.INVESTIGATIONAL_PRODUCT,
            severity=Severity.IMPORTANT,
            reference="Interventions",
            term="A second CAR-T infusion",
            when=m.infusion_number >= 2,
            evidence=("infusion_number",),
            once_per=OncePer.TRIGGER,
        ),
        deviation(
            "SEQ-04",
            category=Category.STUDY_PROCEDURE,
            severity=Severity.MINOR,
            reference="Interventions: lymphodepletion",
            term="CAR-T infusion outside the window after lymphodepletion",
            when=(m.days_after_lymphodepletion < first_day) | (m.days_after_lymphodepletion > last_day),
            evidence=("days_after_lymphodepletion", "lymphodepletion_at", "step_at"),
            once_per=OncePer.TRIGGER,
            parameters=(p.INFUSION_DAYS_AFTER_LYMPHODEPLETION,),
        ),
        deviation(
            "DOSE-01",
            category=Category.INVESTIGATIONAL_PRODUCT,
            severity=Severity.IMPORTANT,
            reference="Interventions: dose",
            term=f"Infused CAR-T cells per kg outside the arm's target +-{tolerance * 100:g} %",
            when=(m.dose_ratio < low_dose_ratio) | (m.dose_ratio > high_dose_ratio),
            evidence=("arm", "cells_per_kg", "target_cells_per_kg", "dose_ratio"),
            once_per=OncePer.TRIGGER,
            parameters=(p.DOSE_TOLERANCE, ARM_TARGETS, p.FACT_DECIMALS),
        ),
    )
