"""Whether a lab correction or retraction can apply: the guard the processing step runs on them.

A correction replaces the value, unit and ULN of the result it names; only that result knows
its LOINC code, so only here can the correction be held to what the contract asks of a result
(a value of the analyte's kind, a unit known for the analyte). A correction that breaks it is
input that breaks the contract: the step raises ``ContractError`` (the live service
dead-letters it with the reason, a replay reports and skips it), never a silent no-op.

A correction or retraction that names no result kept for the participant (an id no result has,
a result no criterion reads, one retracted already, or a screening record a version-2 snapshot
did not keep) is valid input that changes nothing: the step says so (``Step.unmatched``), so
that the live service counts and logs it and a replay counts it in its summary.
"""

from __future__ import annotations

import uuid

from pydantic import ValidationError

from contracts import ContractError, Violation
from contracts.participant_events import LabResult, LabResultCorrected, LabResultRetracted, ScreeningLabResulted
from events.snapshots import unpack
from protocol.state import ParticipantState

CORRECTION_UNMATCHED = "correction_unmatched"
"""The outcome of a correction or retraction that names no kept result (a log event, a metric)."""

_CORRECTED_FIELDS = frozenset({"value", "unit", "uln"})
"""The fields of a result a correction gives (the others stay the corrected result's)."""


def target_of(event: LabResultCorrected | LabResultRetracted) -> uuid.UUID:
    """The event id of the result corrected or retracted."""
    if isinstance(event, LabResultCorrected):
        return event.payload.corrected_event_id
    return event.payload.retracted_event_id


def kept_result(state: ParticipantState, target: uuid.UUID) -> ScreeningLabResulted | None:
    """The screening result of id ``target`` the participant's state keeps: in the screening
    record before enrollment, in the record kept at enrollment after it. None when none is."""
    if state.enrollment is None:
        labs = state.labs
    elif state.screening is not None:
        labs = unpack(state.screening).labs
    else:
        return None
    for results in labs.values():
        for result in results:
            if result.event_id == target:
                return result
    return None


def check_correction(state: ParticipantState, event: LabResultCorrected | LabResultRetracted) -> bool:
    """Whether ``event`` names a result the state keeps (False: it changes nothing, and is to be
    reported); a correction of a kept result must make a result the contract accepts.

    Raises:
        ContractError: the corrected result would break the contract (a unit not known for the
            result's analyte, a value not of its kind, ...): one violation per problem, each on
            the correction's field (``payload.unit``, ``payload.value``).
    """
    result = kept_result(state, target_of(event))
    if result is None:
        return False
    if isinstance(event, LabResultRetracted):
        return True
    c, old = event.payload, result.payload
    try:
        LabResult.model_validate({"loinc": old.loinc, "value": c.value, "unit": c.unit, "uln": c.uln, "lln": old.lln})
    except ValidationError as e:
        raise ContractError(
            [_violation(detail, old.loinc) for detail in e.errors(include_url=False)],
            event_type=event.event_type,
            event_id=str(event.event_id),
        ) from None
    return True


def _violation(detail: object, loinc: str) -> Violation:
    assert isinstance(detail, dict)
    loc = [str(part) for part in detail["loc"]]
    name = loc[0] if loc and loc[0] in _CORRECTED_FIELDS else "value"
    problem = f"{detail['msg']} (the corrected result is LOINC {loinc})"
    return Violation(f"payload.{name}", problem, str(detail["type"]))
