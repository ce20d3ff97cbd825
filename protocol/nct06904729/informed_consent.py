"""Informed consent (Inclusion 8): participants and, for minors, their guardians sign before any
study procedure; nothing is done after consent is withdrawn."""

from __future__ import annotations

import datetime as dt

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from protocol.clinical import age_in_years
from protocol.model import Facts, OncePer, RuleSpec, deviation, facts_on
from protocol.nct06904729.parameters import AGE_OF_CONSENT
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState

STUDY_PROCEDURES = frozenset(
    {
        "ScreeningLabResulted",
        "DiseaseActivityScored",
        "PerformanceStatusAssessed",
        "LeukapheresisPerformed",
        "LymphodepletionAdministered",
        "CarTInfused",
        "FollowUpVisitCompleted",
    }
)
"""Events that are study procedures. Registration, the biopsy report, medical history, the
EULAR/ACR score and concomitant medications are history, not procedures (DESIGN.md)."""


def consent_complete_at(terms: Terms, state: ParticipantState) -> dt.datetime | None:
    """When consent became complete: the participant signed and, under 18 at their signature
    (or of unknown age), a guardian signed too. None while incomplete."""
    participant = state.consent_signed_at.get("participant")
    if participant is None:
        return None
    birth = state.registration.payload.birth_date if state.registration else None
    if birth is not None and age_in_years(birth, participant.date()) >= terms[AGE_OF_CONSENT]:
        return participant
    guardian = state.consent_signed_at.get("guardian")
    return None if guardian is None else max(participant, guardian)


@facts_on(*STUDY_PROCEDURES)
def consent_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    """A procedure's consent, when it is in question: not complete before it, or withdrawn.

    Most procedures follow complete consent; saying nothing about them spares the engine a
    match that cannot hold.
    """
    if event.event_type not in STUDY_PROCEDURES:
        return {}
    complete_at = consent_complete_at(terms, state)
    complete = complete_at is not None and complete_at <= event.occurred_at
    withdrawal = state.consent_withdrawal
    withdrawn = withdrawal is not None and withdrawal.occurred_at < event.occurred_at
    if complete and not withdrawn:
        return {}
    facts: Facts = {
        "procedure": event.event_type,
        "procedure_at": event.occurred_at.isoformat(),
        "consent_complete": complete,
        "signed": sorted(state.consent_signed_at),
    }
    if complete_at is not None:
        facts["consent_complete_at"] = complete_at.isoformat()
    if withdrawn:
        assert withdrawal is not None
        facts["consent_withdrawn_at"] = withdrawal.occurred_at.isoformat()
        facts["consent_withdrawal_event_id"] = str(withdrawal.event_id)
    return facts


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version (none compares with a parameter value)."""
    return (
        deviation(
            "CONSENT-01",
            category=Category.INFORMED_CONSENT,
            severity=Severity.IMPORTANT,
            reference="Inclusion 8",
            term="Study procedure performed before informed consent was complete",
            when=m.consent_complete == False,
            evidence=("procedure", "procedure_at", "consent_complete_at", "signed"),
            parameters=(AGE_OF_CONSENT,),
        ),
        deviation(
            "CONSENT-02",
            category=Category.INFORMED_CONSENT,
            severity=Severity.IMPORTANT,
            reference="Inclusion 8",
            term="Study procedure performed after informed consent was withdrawn",
            when=+m.consent_withdrawn_at,
            evidence=("procedure", "procedure_at", "consent_withdrawn_at"),
            once_per=OncePer.KEY,
            key="consent_withdrawal_event_id",
        ),
    )
