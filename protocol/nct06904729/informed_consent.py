"""Informed consent (Inclusion 8): participants and, for minors, their guardians sign before any
study procedure."""

from __future__ import annotations

import datetime as dt

from contracts import Category, ParticipantEvent, Severity
from protocol.clinical import age_in_years
from protocol.model import Evidence, OncePer, deviation
from protocol.state import ParticipantState

AGE_OF_CONSENT = 18
"""Below this age a guardian signs too (Inclusion 8: "participants and their guardians")."""

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


def consent_complete_at(state: ParticipantState) -> dt.datetime | None:
    """When consent became complete: the participant signed and, under 18 (or of unknown age),
    a guardian signed too. None while incomplete."""
    participant = state.consent_signed_at.get("participant")
    if participant is None:
        return None
    minor = state.birth_date is None or age_in_years(state.birth_date, participant.date()) < AGE_OF_CONSENT
    if not minor:
        return participant
    guardian = state.consent_signed_at.get("guardian")
    return None if guardian is None else max(participant, guardian)


def procedure_before_consent(state: ParticipantState, event: ParticipantEvent) -> Evidence | None:
    """A study procedure whose event time is before consent was complete (or with none yet)."""
    if event.event_type not in STUDY_PROCEDURES:
        return None
    complete_at = consent_complete_at(state)
    if complete_at is not None and complete_at <= event.occurred_at:
        return None
    return {
        "procedure": event.event_type,
        "procedure_at": event.occurred_at.isoformat(),
        "consent_complete_at": None if complete_at is None else complete_at.isoformat(),
        "signed": sorted(state.consent_signed_at),
    }


RULES = (
    deviation(
        "CONSENT-01",
        procedure_before_consent,
        category=Category.INFORMED_CONSENT,
        severity=Severity.IMPORTANT,
        term="Study procedure performed before informed consent was complete",
        reference="Inclusion 8",
        once_per=OncePer.PARTICIPANT,
    ),
)
