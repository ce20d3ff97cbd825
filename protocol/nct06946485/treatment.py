"""Treatment: eligibility confirmed before enrollment, each step after enrollment, one infusion,
no leukapheresis (a universal, off-the-shelf product). No dose rule: the record gives no dose."""

from __future__ import annotations

import datetime as dt

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import CarTInfused, ParticipantEnrolled
from protocol.model import Facts, OncePer, RuleSpec, deviation, facts_on
from protocol.nct06946485.design import STEPS
from protocol.nct06946485.screening import ENROLLED
from protocol.nct06946485.terms import Terms
from protocol.state import ParticipantState


def _done_by(state: ParticipantState, step: str, at: dt.datetime) -> bool:
    done_at = {
        "ParticipantEnrolled": state.enrollment.occurred_at if state.enrollment else None,
        "LymphodepletionAdministered": state.lymphodepletion_at,
    }[step]
    return done_at is not None and done_at <= at


@facts_on("ParticipantEnrolled", "LeukapheresisPerformed", *(step.event_type for step in STEPS))
def treatment_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    at = event.occurred_at
    if isinstance(event, ParticipantEnrolled):
        if state.enrollment is not None:
            return {}
        confirmation = state.eligibility
        confirmed = confirmation is not None and confirmation.payload.eligible and confirmation.occurred_at <= at
        facts: Facts = {"eligibility_confirmed": confirmed}
        if confirmation is not None:
            facts["eligibility_confirmed_eligible"] = confirmation.payload.eligible
            facts["eligibility_confirmed_at"] = confirmation.occurred_at.isoformat()
        return facts
    if event.event_type == "LeukapheresisPerformed":
        return {"leukapheresis": True, "step_at": at.isoformat()}
    if event.event_type not in terms.after:
        return {}
    facts = {
        "step": event.event_type,
        "step_at": at.isoformat(),
        "requires": terms.after[event.event_type],
        "required_step_before": _done_by(state, terms.after[event.event_type], at),
    }
    if isinstance(event, CarTInfused):
        facts["infusion_number"] = len(state.infusions_at) + 1
    return facts


def rules(_terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules (none compares with a parameter value)."""
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
            term="Treatment step before enrollment",
            when=m.required_step_before == False,
            evidence=("step", "step_at", "requires"),
            once_per=OncePer.TRIGGER,
        ),
        deviation(
            "SEQ-03",
            category=Category.INVESTIGATIONAL_PRODUCT,
            severity=Severity.IMPORTANT,
            reference="Interventions; outcomes 'after CHT101 infusion' (singular)",
            term="A second CAR-T infusion",
            when=m.infusion_number >= 2,
            evidence=("infusion_number",),
            once_per=OncePer.TRIGGER,
        ),
        deviation(
            "SEQ-05",
            category=Category.STUDY_PROCEDURE,
            severity=Severity.MINOR,
            reference="Interventions: universal anti-CD70 CAR-T (an off-the-shelf product)",
            term="Leukapheresis performed: not a step of a universal CAR-T product",
            when=m.leukapheresis == True,
            evidence=("step_at",),
            once_per=OncePer.TRIGGER,
        ),
    )
