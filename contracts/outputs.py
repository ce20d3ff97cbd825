"""Contract v1: what TrialGuard publishes — protocol deviations and safety alerts.

Deviation fields follow CDISC SDTM DV: ``category`` is DVCAT, ``term`` is DVTERM, ``occurred_at``
is DVSTDTC (the event time of the trigger). Severity is in the sense of ICH E3.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Category(StrEnum):
    """DVCAT: the kind of protocol deviation."""

    ELIGIBILITY = "ELIGIBILITY"
    INFORMED_CONSENT = "INFORMED CONSENT"
    STUDY_PROCEDURE = "STUDY PROCEDURE"
    INVESTIGATIONAL_PRODUCT = "INVESTIGATIONAL PRODUCT"
    VISIT_SCHEDULE = "VISIT SCHEDULE"


class Severity(StrEnum):
    """ICH E3: an important deviation may affect data reliability or participant safety."""

    IMPORTANT = "important"
    MINOR = "minor"


class _Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    study_id: str
    site_id: str
    participant_id: str
    rule_id: str = Field(description="Stable rule id, e.g. CONSENT-01")
    protocol_version: str = Field(description="The protocol version in force at the trigger's occurred_at and site")
    ruleset_fingerprint: str | None = Field(
        default=None,
        description="SHA-256 (hex) of the version's rules, parameters, schedule and source code: shows a change to "
        "the rules without a version bump. Not part of the finding's id.",
    )
    term: str = Field(description="Readable description (DVTERM)")
    protocol_reference: str = Field(description="The protocol section enforced, e.g. 'Inclusion 8'")
    occurred_at: AwareDatetime = Field(description="Event time of the trigger (DVSTDTC)")
    trigger_event_ids: tuple[uuid.UUID, ...] = Field(min_length=1)
    evidence: dict[str, Any] = Field(description="The values the rule saw")


class DeviationRaised(_Finding):
    """A protocol deviation, raised once per real-world problem."""

    event_type: Literal["DeviationRaised"] = "DeviationRaised"
    deviation_id: uuid.UUID = Field(description="uuid5 of study, participant, rule id and triggers")
    category: Category
    severity: Severity


class SafetyAlertRaised(_Finding):
    """A safety signal for the trial team (CRS/ICANS grade >= 3, a serious adverse event, a relapse)."""

    event_type: Literal["SafetyAlertRaised"] = "SafetyAlertRaised"
    alert_id: uuid.UUID = Field(description="uuid5 of study, participant, rule id and triggers")


Finding = DeviationRaised | SafetyAlertRaised


class FindingSuperseded(BaseModel):
    """A finding that no longer holds once a lab result it was decided on was corrected or
    retracted. The finding itself is never edited: this record supersedes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    event_type: Literal["FindingSuperseded"] = "FindingSuperseded"
    finding_id: uuid.UUID = Field(description="deviation_id or alert_id of the finding superseded")
    study_id: str
    site_id: str
    participant_id: str
    rule_id: str = Field(description="The superseded finding's rule id")
    superseded_by_event_id: uuid.UUID = Field(description="event_id of the correction or retraction")
    reason: str
    occurred_at: AwareDatetime = Field(description="Event time of the correction or retraction")
    protocol_version: str = Field(description="The version the finding's trigger was decided again under")
    ruleset_fingerprint: str | None = Field(default=None, description="SHA-256 (hex) of that version's rules")


Output = DeviationRaised | SafetyAlertRaised | FindingSuperseded
"""Anything the rules service publishes on the deviations topic."""
