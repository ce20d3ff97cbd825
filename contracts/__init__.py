"""Wire contract v1: the pydantic models are the single definition of every event on the wire."""

from contracts.access import AccessAction, AccessChanged
from contracts.codec import EVENT_TYPES, encode, parse_event
from contracts.errors import ContractError, Violation
from contracts.limits import MAX_EVENT_BYTES, MAX_NESTING_DEPTH, MAX_REASON_CHARS
from contracts.outputs import Category, DeviationRaised, Finding, FindingSuperseded, Output, SafetyAlertRaised, Severity
from contracts.participant_events import SCHEMA_VERSION, ParticipantEvent
from contracts.reviews import FindingReviewed, ReviewAction, ReviewStatus, ReviewTransitionError, check_transition

__all__ = [
    "EVENT_TYPES",
    "MAX_EVENT_BYTES",
    "MAX_NESTING_DEPTH",
    "MAX_REASON_CHARS",
    "SCHEMA_VERSION",
    "AccessAction",
    "AccessChanged",
    "Category",
    "ContractError",
    "DeviationRaised",
    "Finding",
    "FindingReviewed",
    "FindingSuperseded",
    "Output",
    "ParticipantEvent",
    "ReviewAction",
    "ReviewStatus",
    "ReviewTransitionError",
    "SafetyAlertRaised",
    "Severity",
    "Violation",
    "check_transition",
    "encode",
    "parse_event",
]
