"""Informed consent: no study procedure before the participant signs, none after withdrawal.

The record's consent criterion is cut off (after Inclusion 7); every participant is an adult
(Inclusion 5), so the participant's own signature is the consent (ICH E6 4.8). A legal
representative's signature is not in the record and not accepted in its place.
"""

from __future__ import annotations

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from protocol.model import Facts, OncePer, RuleSpec, deviation, facts_on
from protocol.nct06946485.terms import Terms
from protocol.state import ParticipantState

STUDY_PROCEDURES = frozenset(
    {
        "ScreeningLabResulted",
        "DiseaseActivityScored",
        "BilagAssessed",
        "ParticipantEnrolled",
        "LymphodepletionAdministered",
        "CarTInfused",
        "FollowUpVisitCompleted",
    }
)
"""Events that are study procedures (registration, history and medications are history)."""


@facts_on(*STUDY_PROCEDURES)
def consent_facts(_terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    """A procedure's consent, when it is in question: not signed before it, or withdrawn."""
    signed_at = state.consent_signed_at.get("participant")
    signed = signed_at is not None and signed_at <= event.occurred_at
    withdrawal = state.consent_withdrawal
    withdrawn = withdrawal is not None and withdrawal.occurred_at < event.occurred_at
    if signed and not withdrawn:
        return {}
    facts: Facts = {
        "procedure": event.event_type,
        "procedure_at": event.occurred_at.isoformat(),
        "consent_signed": signed,
    }
    if withdrawn:
        assert withdrawal is not None
        facts["consent_withdrawn_at"] = withdrawal.occurred_at.isoformat()
        facts["consent_withdrawal_event_id"] = str(withdrawal.event_id)
    return facts


def rules(_terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules (none compares with a parameter value)."""
    return (
        deviation(
            "CONSENT-01",
            category=Category.INFORMED_CONSENT,
            severity=Severity.IMPORTANT,
            reference="Informed consent (ICH E6 4.8; the record's consent criterion is cut off)",
            term="Study procedure performed before the participant signed informed consent",
            when=m.consent_signed == False,
            evidence=("procedure", "procedure_at"),
        ),
        deviation(
            "CONSENT-02",
            category=Category.INFORMED_CONSENT,
            severity=Severity.IMPORTANT,
            reference="Informed consent (ICH E6 4.8)",
            term="Study procedure performed after informed consent was withdrawn",
            when=+m.consent_withdrawn_at,
            evidence=("procedure", "procedure_at", "consent_withdrawn_at"),
            once_per=OncePer.KEY,
            key="consent_withdrawal_event_id",
        ),
    )
