"""What the protocol knows about one participant: the facts folded from their events so far.

The state keeps the events the rules read (immutable contract models), not copies of their
fields, so evidence can always name the event it came from. It grows with one participant's own
history, never with the log as a whole.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from contracts.participant_events import (
    BilagAssessed,
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


class SeenIds:
    """Event ids already processed, oldest first: an immutable ordered set, packed.

    The ids are kept as their 16 raw bytes, one after another, in one ``bytes`` object: about
    16 bytes an id, where a set of ``uuid.UUID`` costs about 130 (an object, its int and a table
    slot). A participant's whole trial is a few hundred events, so a lookup is a short scan in C;
    adding an id copies the bytes (a participant's state is immutable).
    """

    __slots__ = ("packed",)

    def __init__(self, packed: bytes = b"") -> None:
        if len(packed) % 16:
            raise ValueError(f"packed event ids are 16 bytes each, not {len(packed)} bytes in all")
        self.packed = packed

    def __contains__(self, event_id: object) -> bool:
        return isinstance(event_id, uuid.UUID) and self.has(event_id.bytes)

    def has(self, raw: bytes) -> bool:
        """Whether the id of these 16 raw bytes is here."""
        packed = self.packed
        at = packed.find(raw)
        while at > 0 and at % 16:  # a match across two ids is no match: look further
            at = packed.find(raw, at + 1)
        return at >= 0

    def __len__(self) -> int:
        return len(self.packed) // 16

    def __iter__(self) -> Iterator[uuid.UUID]:
        packed = self.packed
        return (uuid.UUID(bytes=packed[i : i + 16]) for i in range(0, len(packed), 16))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenIds) and other.packed == self.packed

    def __hash__(self) -> int:
        return hash(self.packed)

    def __repr__(self) -> str:
        return f"SeenIds({len(self)} ids)"

    def added(self, event_id: uuid.UUID | bytes, bound: int) -> SeenIds:
        """These ids and ``event_id`` (newest; or its 16 raw bytes), the oldest dropped beyond
        ``bound`` ids."""
        packed = self.packed + (event_id if isinstance(event_id, bytes) else event_id.bytes)
        if len(packed) > 16 * bound:
            packed = packed[len(packed) - 16 * bound :]
        return SeenIds(packed)


NO_IDS = SeenIds()


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
        gcsf: G-CSF exposures recorded as concomitant medication (drug class "G-CSF").
        csf: exposures to any colony-stimulating factor (``protocol.drugs.is_colony_stimulating_factor``:
            G-CSF, GM-CSF, pegylated forms, by class or ATC L03AA).
        bilag: BILAG-2004 assessments, in log order.
        enrollment: the first enrollment.
        leukapheresis_at, lymphodepletion_at: event time of the latest of each step.
        infusions_at: event time of every CAR-T infusion.
        visits_done: visit codes completed.
        withdrawn_at: when the participant left the study.
        raised: keys of findings already raised, so each is raised once.
        screening: for an enrolled participant, the state as it was just before enrollment,
            compact (no seen event ids, no nested copy), packed as a compressed snapshot
            (``events.snapshots.pack``): eligibility was decided from it, and a correction or
            retraction of one of its lab results decides the enrollment again (events.decide
            unpacks it). Packed because no rule reads it and nearly no participant needs it
            again: about 2 KB, where the 25 or so events as objects cost about 35 KB.
        enrollment_findings: the findings in force that the enrollment raised (later ones raised
            after a correction included, superseded ones left out), in the order raised.
        seen_event_ids: event ids already processed, oldest first, so a duplicate changes
            nothing (see events.decide.MAX_SEEN_EVENT_IDS).
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
    csf: tuple[ConcomitantMedicationRecorded, ...] = ()
    bilag: tuple[BilagAssessed, ...] = ()
    eligibility: EligibilityConfirmed | None = None
    enrollment: ParticipantEnrolled | None = None
    leukapheresis_at: dt.datetime | None = None
    lymphodepletion_at: dt.datetime | None = None
    infusions_at: tuple[dt.datetime, ...] = ()
    visits_done: frozenset[str] = frozenset()
    withdrawn_at: dt.datetime | None = None
    raised: frozenset[str] = frozenset()
    screening: bytes | None = None
    enrollment_findings: tuple[KeptFinding, ...] = ()
    seen_event_ids: SeenIds = NO_IDS


def evolve(state: ParticipantState, **changes: Any) -> ParticipantState:
    """A copy of ``state`` with ``changes``: ``dataclasses.replace`` without re-running
    ``__init__`` (it is on the path of every event, and the fields need no validation)."""
    new = object.__new__(ParticipantState)
    new.__dict__.update(state.__dict__)
    new.__dict__.update(changes)
    return new
