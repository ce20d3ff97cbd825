"""fold: how each event changes what is known about a participant. Pure."""

from __future__ import annotations

from typing import Any

from contracts import ParticipantEvent
from contracts.participant_events import (
    CarTInfused,
    ConcomitantMedicationRecorded,
    ConsentSigned,
    ConsentWithdrawn,
    DiseaseActivityScored,
    EligibilityConfirmed,
    FollowUpVisitCompleted,
    KidneyBiopsyReported,
    LeukapheresisPerformed,
    LymphodepletionAdministered,
    MedicalHistoryRecorded,
    ParticipantEnrolled,
    ParticipantRegistered,
    ParticipantWithdrawn,
    PerformanceStatusAssessed,
    ScreeningLabResulted,
    SLEClassificationScored,
)
from contracts.units import analyte_for
from protocol.state import ParticipantState
from protocol.state import evolve as replace

GCSF = "G-CSF"

SCREENING_RECORD: dict[str, Any] = {
    "labs": {},
    "sledai": (),
    "ecog": (),
    "biopsy": None,
    "eular": None,
    "history": None,
    "gcsf": (),
    "eligibility": None,
}
"""What eligibility reads and nothing after enrollment does: emptied at enrollment."""
SCREENING_EVENTS = frozenset(
    {
        "ScreeningLabResulted",
        "DiseaseActivityScored",
        "PerformanceStatusAssessed",
        "KidneyBiopsyReported",
        "SLEClassificationScored",
        "MedicalHistoryRecorded",
        "ConcomitantMedicationRecorded",
        "EligibilityConfirmed",
    }
)


def fold(state: ParticipantState, event: ParticipantEvent) -> ParticipantState:
    """The participant's state after ``event``. Events that change no fact return ``state``."""
    match event:
        case ParticipantRegistered():
            return replace(state, registration=event)
        case ConsentSigned(payload=p):
            if state.consent_withdrawal is not None:  # a new signature after withdrawal: consent anew
                return replace(state, consent_withdrawal=None, consent_signed_at={p.signer: event.occurred_at})
            if p.signer in state.consent_signed_at:
                return state
            return replace(state, consent_signed_at={**state.consent_signed_at, p.signer: event.occurred_at})
        case ConsentWithdrawn():
            return replace(state, consent_withdrawal=event)
        case ParticipantEnrolled() if state.enrollment is None:
            # Eligibility has just been decided, once and for all: the screening record is no
            # longer read, so it need not be kept (the log keeps it).
            return replace(state, enrollment=event, **SCREENING_RECORD)
        case _ if state.enrollment is not None and event.event_type in SCREENING_EVENTS:
            return state
        case ScreeningLabResulted(payload=p):
            analyte = analyte_for(p.loinc)
            if analyte is None:
                return state  # a LOINC code no criterion reads
            return replace(state, labs={**state.labs, analyte.name: (*state.labs.get(analyte.name, ()), event)})
        case DiseaseActivityScored():
            return replace(state, sledai=(*state.sledai, event))
        case PerformanceStatusAssessed():
            return replace(state, ecog=(*state.ecog, event))
        case KidneyBiopsyReported():
            return replace(state, biopsy=event)
        case SLEClassificationScored():
            return replace(state, eular=event)
        case MedicalHistoryRecorded():
            return replace(state, history=event)
        case ConcomitantMedicationRecorded(payload=p) if p.drug_class == GCSF:
            return replace(state, gcsf=(*state.gcsf, event))
        case EligibilityConfirmed():
            return replace(state, eligibility=event)
        case LeukapheresisPerformed():
            return replace(state, leukapheresis_at=event.occurred_at)
        case LymphodepletionAdministered():
            return replace(state, lymphodepletion_at=event.occurred_at)
        case CarTInfused():
            return replace(state, infusions_at=(*state.infusions_at, event.occurred_at))
        case FollowUpVisitCompleted(payload=p):
            return replace(state, visits_done=state.visits_done | {p.visit})
        case ParticipantWithdrawn():
            return replace(state, withdrawn_at=event.occurred_at)
    return state
