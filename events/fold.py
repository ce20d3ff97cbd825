"""fold: how each event changes what is known about a participant. Pure."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

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
    LabResult,
    LabResultCorrected,
    LabResultRetracted,
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

Labs = dict[str, tuple[ScreeningLabResulted, ...]]

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


def corrected_labs(labs: Labs, event: LabResultCorrected | LabResultRetracted) -> Labs | None:
    """The screening labs with one result replaced by its correction, or removed by its retraction.

    The corrected result keeps its event id, LOINC code and specimen time (a later correction of
    the same id replaces it again: the latest correction wins); value, unit and ULN are the
    correction's. Returns None when nothing changes: the id names no result kept here (an unknown
    id, a LOINC code no criterion reads, a result already retracted), or the correction does not
    fit the result's analyte (a unit the analyte is not reported in: it cannot be applied).
    """
    target: uuid.UUID = (
        event.payload.corrected_event_id if isinstance(event, LabResultCorrected) else event.payload.retracted_event_id
    )
    for analyte, results in labs.items():
        for i, result in enumerate(results):
            if result.event_id != target:
                continue
            if isinstance(event, LabResultRetracted):
                rest = results[:i] + results[i + 1 :]
                return {k: rest if k == analyte else v for k, v in labs.items() if k != analyte or rest}
            c, old = event.payload, result.payload
            try:
                payload = LabResult.model_validate(
                    {"loinc": old.loinc, "value": c.value, "unit": c.unit, "uln": c.uln, "lln": old.lln}
                )
            except ValidationError:
                return None
            if payload == old:
                return None
            new = result.model_copy(update={"payload": payload})
            return {**labs, analyte: (*results[:i], new, *results[i + 1 :])}
    return None


def compact(state: ParticipantState) -> ParticipantState:
    """The state kept at enrollment to decide it again: without seen ids or nested copies."""
    return replace(state, seen_event_ids={}, screening=None, enrollment_findings=())


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
            # Eligibility has just been decided: the screening record is no longer read by any
            # rule, so it is emptied. A compact copy is kept (ParticipantState.screening): a lab
            # correction or retraction after enrollment decides the enrollment again from it.
            return replace(state, enrollment=event, screening=compact(state), **SCREENING_RECORD)
        case LabResultCorrected() | LabResultRetracted() if state.enrollment is None:
            labs = corrected_labs(state.labs, event)
            return state if labs is None else replace(state, labs=labs)
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
