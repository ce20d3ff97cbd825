"""fold: how each event changes what is known about a participant. Pure."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from contracts import ParticipantEvent
from contracts.participant_events import (
    ConcomitantMedicationRecorded,
    ConsentSigned,
    ConsentWithdrawn,
    DiseaseActivityScored,
    FollowUpVisitCompleted,
    LabResult,
    LabResultCorrected,
    LabResultRetracted,
    ParticipantEnrolled,
    ParticipantRegistered,
    ScreeningLabResulted,
)
from contracts.retained import retained
from contracts.units import analyte_for
from events.snapshots import pack
from protocol.drugs import is_colony_stimulating_factor
from protocol.state import NO_IDS, ParticipantState
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
    "csf": (),
    "bilag": (),
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
        "BilagAssessed",
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
    return replace(state, seen_event_ids=NO_IDS, screening=None, enrollment_findings=())


Fold = Callable[[ParticipantState, Any], ParticipantState]


def _registered(state: ParticipantState, event: ParticipantRegistered) -> ParticipantState:
    return replace(state, registration=retained(event))


def _consent_signed(state: ParticipantState, event: ConsentSigned) -> ParticipantState:
    signer = event.payload.signer
    if state.consent_withdrawal is not None:  # a new signature after withdrawal: consent anew
        return replace(state, consent_withdrawal=None, consent_signed_at={signer: event.occurred_at})
    if signer in state.consent_signed_at:
        return state
    return replace(state, consent_signed_at={**state.consent_signed_at, signer: event.occurred_at})


def _consent_withdrawn(state: ParticipantState, event: ConsentWithdrawn) -> ParticipantState:
    return replace(state, consent_withdrawal=retained(event))


def _enrolled(state: ParticipantState, event: ParticipantEnrolled) -> ParticipantState:
    if state.enrollment is not None:
        return state
    # Eligibility has just been decided: the screening record is no longer read by any rule, so
    # it is emptied. A compact copy is kept, packed (ParticipantState.screening): a lab
    # correction or retraction after enrollment decides the enrollment again from it.
    return replace(state, enrollment=retained(event), screening=pack(compact(state)), **SCREENING_RECORD)


def _lab_corrected(state: ParticipantState, event: LabResultCorrected | LabResultRetracted) -> ParticipantState:
    if state.enrollment is not None:
        return state  # after enrollment, events.decide decides the enrollment again
    labs = corrected_labs(state.labs, event)
    return state if labs is None else replace(state, labs=labs)


def _lab_resulted(state: ParticipantState, event: ScreeningLabResulted) -> ParticipantState:
    analyte = analyte_for(event.payload.loinc)
    if analyte is None:
        return state  # a LOINC code no criterion reads
    labs = (*state.labs.get(analyte.name, ()), retained(event))
    return replace(state, labs={**state.labs, analyte.name: labs})


def _medication(state: ParticipantState, event: ConcomitantMedicationRecorded) -> ParticipantState:
    if not is_colony_stimulating_factor(event.payload):
        return state
    kept = retained(event)
    if event.payload.drug_class == GCSF:  # NCT06904729's washout reads exactly this class
        return replace(state, gcsf=(*state.gcsf, kept), csf=(*state.csf, kept))
    return replace(state, csf=(*state.csf, kept))


def _disease_activity(state: ParticipantState, event: DiseaseActivityScored) -> ParticipantState:
    # ``sledai`` holds SLEDAI-2K only: the other instruments (SELENA-SLEDAI, PGA) are outcome
    # measures no eligibility criterion reads yet, and must never be taken for a SLEDAI-2K.
    if event.payload.instrument != "SLEDAI-2K":
        return state
    return replace(state, sledai=(*state.sledai, retained(event)))


def _visit_completed(state: ParticipantState, event: FollowUpVisitCompleted) -> ParticipantState:
    return replace(state, visits_done=state.visits_done | {event.payload.visit})


FOLDS: dict[str, Fold] = {
    "ParticipantRegistered": _registered,
    "ConsentSigned": _consent_signed,
    "ConsentWithdrawn": _consent_withdrawn,
    "ParticipantEnrolled": _enrolled,
    "LabResultCorrected": _lab_corrected,
    "LabResultRetracted": _lab_corrected,
    "ScreeningLabResulted": _lab_resulted,
    "DiseaseActivityScored": _disease_activity,
    "BilagAssessed": lambda state, event: replace(state, bilag=(*state.bilag, retained(event))),
    "PerformanceStatusAssessed": lambda state, event: replace(state, ecog=(*state.ecog, retained(event))),
    "KidneyBiopsyReported": lambda state, event: replace(state, biopsy=retained(event)),
    "SLEClassificationScored": lambda state, event: replace(state, eular=retained(event)),
    "MedicalHistoryRecorded": lambda state, event: replace(state, history=retained(event)),
    "ConcomitantMedicationRecorded": _medication,
    "EligibilityConfirmed": lambda state, event: replace(state, eligibility=retained(event)),
    "LeukapheresisPerformed": lambda state, event: replace(state, leukapheresis_at=event.occurred_at),
    "LymphodepletionAdministered": lambda state, event: replace(state, lymphodepletion_at=event.occurred_at),
    "CarTInfused": lambda state, event: replace(state, infusions_at=(*state.infusions_at, event.occurred_at)),
    "FollowUpVisitCompleted": _visit_completed,
    "ParticipantWithdrawn": lambda state, event: replace(state, withdrawn_at=event.occurred_at),
}
"""How each event type changes the state; a type not here (AdverseEventReported, ClockTicked,
...) changes nothing. A table, not a ``match``: the step runs for every event, and trying two
dozen class patterns in turn cost more than the fold itself."""


def fold(state: ParticipantState, event: ParticipantEvent) -> ParticipantState:
    """The participant's state after ``event``. Events that change no fact return ``state``."""
    apply = FOLDS.get(event.event_type)
    if apply is None:
        return state
    if state.enrollment is not None and event.event_type in SCREENING_EVENTS:
        return state  # the screening record is closed once eligibility is decided
    return apply(state, event)
