"""The registry record's eligibility criteria and how a protocol package encodes each.

Every inclusion and exclusion criterion of the record is either encoded (the rule ids that
enforce it) or listed as not encoded, with the reason, so that a reviewer sees what the service
does not check and why (``trialguard protocol check`` refuses a criterion with neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NotEncoded(StrEnum):
    """Why a criterion raises nothing by itself."""

    INVESTIGATOR_JUDGEMENT = "investigator judgement"
    """Only the investigator can decide it; their EligibilityConfirmed covers it (SEQ-01)."""
    NO_DATA = "no data in the contract"
    """No contract-v1 event carries what it would be decided from."""
    TEXT_NOT_AVAILABLE = "text not available in the source"
    """The record does not say enough to decide it (a threshold, a definition)."""


@dataclass(frozen=True)
class Criterion:
    """One criterion (or sub-criterion) of the registry record.

    Attributes:
        reference: its number in the record, e.g. "Inclusion 9.5".
        text: the record's words, quoted.
        rules: the rule ids that enforce it (empty: not encoded).
        not_encoded: why not, when ``rules`` is empty.
        note: what the rules leave to judgement, when they encode only part of it.
    """

    reference: str
    text: str
    rules: tuple[str, ...] = ()
    not_encoded: NotEncoded | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if bool(self.rules) == (self.not_encoded is not None):
            raise ValueError(f"{self.reference}: a criterion is either encoded by rules or not encoded with a reason")
