"""What the protocol knows about one participant: the facts folded from their events so far.

The state keeps the events the rules read (immutable contract models), not copies of their
fields, so evidence can always name the event it came from. It grows with one participant's own
history, never with the log as a whole.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.participant_events import (
    ConcomitantMedicationRecorded,
    ConsentWithdrawn,
    DiseaseActivityScored,
    EligibilityConfirmed,
    KidneyBiopsyReported,
    MedicalHistoryRecorded,
    ParticipantEnrolled,
    ParticipantRegistered,
    PerformanceStatusAssessed,
    ScreeningLabResulted,
    SLEClassificationScored,
)

Signer = Literal["participant", "guardian"]


@dataclass(frozen=True)
class KeptFinding:
    """A finding raised at enrollment, kept so a lab correction can re-decide it.

    Attributes:
        finding_id: its deviation_id or alert_id.
        rule_id: its rule.
        once_key: the key it was raised under (``ParticipantState.raised``).
    """

    finding_id: uuid.UUID
    rule_id: str
    once_key: str


@dataclass(frozen=True)
class ParticipantState:
    """One participant's facts, folded from their events in log order (see events.fold).

    Attributes:
        participant_id: the pseudonymous id.
        registration: the latest registration (birth date, sex, height, weight).
        consent_signed_at: the first signature of each signer since the last withdrawal.
        consent_withdrawal: the withdrawal in force (cleared by a later signature).
        labs: screening results by analyte name, in log order.
        sledai, ecog: disease-activity and performance-status assessments, in log order.
        biopsy, eular, history, eligibility: the latest of each, in log order.
        gcsf: G-CSF exposures recorded as concomitant medication.
        enrollment: the first enrollment.
        leukapheresis_at, lymphodepletion_at: event time of the latest of each step.
        infusions_at: event time of every CAR-T infusion.
        visits_done: visit codes completed.
        withdrawn_at: when the participant left the study.
        raised: keys of findings already raised, so each is raised once.
        screening: for an enrolled participant, the state as it was just before enrollment,
            compact (no seen event ids, no nested copy): eligibility is decided from it, and a
            correction or retraction of one of its lab results decides the enrollment again
            (events.decide). It costs what the screening record costs before enrollment: about
            25 events, a few KB per enrolled participant (the events are shared, not copied).
        enrollment_findings: the findings in force that the enrollment raised (later ones raised
            after a correction included, superseded ones left out), in the order raised.
        seen_event_ids: event ids already processed, oldest first, so a duplicate changes
            nothing (a dict used as an ordered set; see events.decide.MAX_SEEN_EVENT_IDS).
    """

    participant_id: str
    registration: ParticipantRegistered | None = None
    consent_signed_at: dict[Signer, dt.datetime] = field(default_factory=dict)
    consent_withdrawal: ConsentWithdrawn | None = None
    labs: dict[str, tuple[ScreeningLabResulted, ...]] = field(default_factory=dict)
    sledai: tuple[DiseaseActivityScored, ...] = ()
    ecog: tuple[PerformanceStatusAssessed, ...] = ()
    biopsy: KidneyBiopsyReported | None = None
    eular: SLEClassificationScored | None = None
    history: MedicalHistoryRecorded | None = None
    gcsf: tuple[ConcomitantMedicationRecorded, ...] = ()
    eligibility: EligibilityConfirmed | None = None
    enrollment: ParticipantEnrolled | None = None
    leukapheresis_at: dt.datetime | None = None
    lymphodepletion_at: dt.datetime | None = None
    infusions_at: tuple[dt.datetime, ...] = ()
    visits_done: frozenset[str] = frozenset()
    withdrawn_at: dt.datetime | None = None
    raised: frozenset[str] = frozenset()
    screening: ParticipantState | None = None
    enrollment_findings: tuple[KeptFinding, ...] = ()
    seen_event_ids: dict[uuid.UUID, None] = field(default_factory=dict)


def evolve(state: ParticipantState, **changes: Any) -> ParticipantState:
    """A copy of ``state`` with ``changes``: ``dataclasses.replace`` without re-running
    ``__init__`` (it is on the path of every event, and the fields need no validation)."""
    new = object.__new__(ParticipantState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new
