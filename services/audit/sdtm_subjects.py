"""What the SDTM datasets need to know of each participant, gathered from their events.

Pure: the same events always give the same subjects. Shared by DV (study days) and DM.

Dates: every ``--DTC`` is the event time in ISO 8601 with the offset the source recorded, and a
study day counts calendar days between the *local* dates of the two times (the site's calendar,
as the site sees it), per SDTMIG: ``--DY = date - RFSTDTC + 1`` on or after the reference start,
``date - RFSTDTC`` before it, so there is no day 0 (the day before day 1 is day -1).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from contracts import ParticipantEvent
from protocol.clinical import age_in_years
from protocol.model import Protocol
from services.audit.sdtm_spec import MAX_VALUE_BYTES
from services.audit.sdtm_study import SdtmStudy

AGE_OF_CONSENT = "age_of_consent"
"""The protocol parameter under which a guardian must sign too; a protocol without it needs only
the participant's signature."""


def clip(value: str, limit: int = MAX_VALUE_BYTES) -> str:
    """``value`` cut to at most ``limit`` bytes of UTF-8, never inside a character."""
    raw = value.encode("utf-8")
    if len(raw) <= limit:
        return value
    # Cutting may leave the start of a multi-byte character at the end: "ignore" drops just that.
    return raw[:limit].decode("utf-8", "ignore")


def usubjid(study_id: str, site_id: str, participant_id: str) -> str:
    """STUDYID-SITEID-SUBJID."""
    return f"{study_id}-{site_id}-{participant_id}"


def iso(moment: dt.datetime | None) -> str:
    """ISO 8601 with the offset; fractions of a second only when there are some; "" for none."""
    if moment is None:
        return ""
    return moment.isoformat(timespec="microseconds" if moment.microsecond else "seconds")


def study_day(moment: dt.datetime | None, reference: dt.datetime | None) -> int | None:
    """The SDTM study day of ``moment``: day 1 is the reference start's local date, no day 0.

    None when either is unknown (a participant never exposed has no study days).
    """
    if moment is None or reference is None:
        return None
    days = (moment.date() - reference.date()).days
    return days + 1 if days >= 0 else days


@dataclass
class Subject:
    """One participant's facts for SDTM. Holds the birth date: never log a Subject."""

    study_id: str
    site_id: str
    participant_id: str
    registered_at: dt.datetime | None = None
    birth_date: dt.date | None = field(default=None, repr=False)
    sex: str | None = None
    signed: dict[str, dt.datetime] = field(default_factory=dict)
    """Each signer's first consent signature."""
    enrolled_arm: str | None = None
    screen_failed: bool = False
    withdrawn_at: dt.datetime | None = None
    exposures: list[dt.datetime] = field(default_factory=list)
    reference_starts: list[dt.datetime] = field(default_factory=list)
    visits: dict[str, dt.datetime] = field(default_factory=dict)

    @property
    def usubjid(self) -> str:
        """STUDYID-SITEID-SUBJID."""
        return usubjid(self.study_id, self.site_id, self.participant_id)

    @property
    def reference_start(self) -> dt.datetime | None:
        """RFSTDTC: the first occurrence of the study's reference event."""
        return min(self.reference_starts, default=None)

    def consent_complete_at(self, protocol: Protocol) -> dt.datetime | None:
        """RFICDTC: when consent was first complete.

        The participant's first signature; if the protocol has an age of consent and the
        participant was younger at that date (or of unknown age), the later of that and a
        guardian's first signature. None while incomplete.
        """
        participant = self.signed.get("participant")
        if participant is None:
            return None
        try:
            adult_at = int(protocol.parameter(AGE_OF_CONSENT).value)
        except KeyError:
            return participant
        if self.birth_date is not None and age_in_years(self.birth_date, participant.date()) >= adult_at:
            return participant
        guardian = self.signed.get("guardian")
        return None if guardian is None else max(participant, guardian)


def _earliest(current: dt.datetime | None, moment: dt.datetime) -> dt.datetime:
    return moment if current is None or moment < current else current


def subjects(events: Iterable[ParticipantEvent], study: SdtmStudy) -> dict[str, Subject]:
    """Each participant's facts by participant id, from their events (each event id counted once).

    The log's order does not matter: firsts are by event time, so a late-recorded event counts
    where it happened.
    """
    found: dict[str, Subject] = {}
    seen: set[uuid.UUID] = set()
    for event in events:
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        subject = found.setdefault(event.participant_id, Subject(event.study_id, event.site_id, event.participant_id))
        _absorb(subject, event, study)
    return found


def _absorb(subject: Subject, event: ParticipantEvent, study: SdtmStudy) -> None:
    kind, payload, at = event.event_type, event.payload.model_dump(), event.occurred_at
    if kind == "ParticipantRegistered":
        subject.registered_at = _earliest(subject.registered_at, at)
        subject.birth_date, subject.sex = payload["birth_date"], payload["sex"]
    elif kind == "ConsentSigned":
        subject.signed[payload["signer"]] = _earliest(subject.signed.get(payload["signer"]), at)
    elif kind == "EligibilityConfirmed":
        subject.screen_failed = subject.screen_failed or not payload["eligible"]
    elif kind == "ParticipantEnrolled":
        subject.enrolled_arm = subject.enrolled_arm or payload["arm"]
    elif kind == "ParticipantWithdrawn":
        subject.withdrawn_at = _earliest(subject.withdrawn_at, at)
    elif kind == "FollowUpVisitCompleted":
        subject.visits[payload["visit"]] = _earliest(subject.visits.get(payload["visit"]), at)
    if kind in study.exposure_events:
        subject.exposures.append(at)
    if kind in study.reference_events:
        subject.reference_starts.append(at)
