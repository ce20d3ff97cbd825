"""SDTM DM (demographics, one record per subject) from the participant events.

Pure, like ``services.audit.sdtm``. Every participant with an event gets a record, so every
USUBJID of DV is in DM. Choices (SDTMIG 3.4, DM domain):

* **RFSTDTC** (and RFXSTDTC) is the first exposure event of the study (``SdtmStudy``): for
  NCT06904729 the first ``CarTInfused``; RFXENDTC and RFENDTC the last. Null when never exposed.
* **RFICDTC** is when informed consent was first complete: the participant's first signature, or
  with a guardian's too when the protocol's ``age_of_consent`` asks for one.
* **RFPENDTC** is the end of participation when the log says it: withdrawal or the schedule's last
  visit; otherwise null (still in the study, or a screen failure with no withdrawal recorded).
* **AGE** is completed years at RFICDTC from the registration's birth date (AGEU ``YEARS``); the
  birth date itself is not exported (BRTHDTC is left out) and never logged.
* **SEX** is the registration's ``F``/``M``; ``U`` for a participant without a registration.
* **Arms** follow SDTMIG 3.4: ARMCD/ARM are the arm assigned at enrollment, ACTARMCD/ACTARM the
  arm received (treated: exposed, or for a study without exposure events, enrolled). When one is
  null, ARMNRS says why (codelist ARMNULRS): ``SCREEN FAILURE`` (found ineligible and never
  enrolled), ``NOT ASSIGNED`` (not enrolled, e.g. still in screening or withdrawn before),
  ``ASSIGNED, NOT TREATED`` (enrolled, never exposed), ``UNPLANNED TREATMENT`` (exposed without
  an enrollment; ACTARMUD describes it). The pseudo-arms ``SCRNFAIL``/``NOTASSGN``/``NOTTRT`` of
  SDTMIG 3.2 are not used.
* **COUNTRY** is the study's (``SdtmStudy.country``), the same for every site.
* **DMDTC** is the registration time; DMDY its study day.
* DTHDTC, DTHFL and RACE are expected variables the event log has no data for: present and null.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from contracts import ParticipantEvent
from protocol.clinical import age_in_years
from protocol.model import Protocol
from services.audit.sdtm_study import SdtmStudy
from services.audit.sdtm_subjects import Subject, clip, iso, study_day, subjects

SCREEN_FAILURE, NOT_ASSIGNED, NOT_TREATED, UNPLANNED = (
    "SCREEN FAILURE",
    "NOT ASSIGNED",
    "ASSIGNED, NOT TREATED",
    "UNPLANNED TREATMENT",
)
"""ARMNRS terms (CDISC codelist ARMNULRS)."""


@dataclass(frozen=True)
class DmRow:
    """One DM record (field names are the variables, lower case; None: a null number)."""

    studyid: str
    domain: str
    usubjid: str
    subjid: str
    rfstdtc: str
    rfendtc: str
    rfxstdtc: str
    rfxendtc: str
    rficdtc: str
    rfpendtc: str
    dthdtc: str
    dthfl: str
    siteid: str
    age: int | None
    ageu: str
    sex: str
    race: str
    armcd: str
    arm: str
    actarmcd: str
    actarm: str
    armnrs: str
    actarmud: str
    country: str
    dmdtc: str
    dmdy: int | None


def arm_code_and_name(protocol: Protocol, arm: str) -> tuple[str, str]:
    """ARMCD (upper-case letters and digits, at most 20) and ARM (the protocol's group name)."""
    code = re.sub(r"[^A-Z0-9]", "", arm.upper())[:20]
    described = next((a.description for a in protocol.arms if a.name == arm), arm)
    return code, clip(described.split(":")[0].strip())


def end_of_participation(subject: Subject, protocol: Protocol) -> dt.datetime | None:
    """When participation ended, if it has: withdrawal or the schedule's last visit; else None."""
    last_visit = protocol.schedule[-1].code if protocol.schedule else None
    ends = [t for t in (subject.withdrawn_at, subject.visits.get(last_visit or "")) if t is not None]
    return min(ends, default=None)


def arms(subject: Subject, protocol: Protocol, study: SdtmStudy) -> tuple[str, str, str, str, str, str]:
    """ARMCD, ARM, ACTARMCD, ACTARM, ARMNRS, ACTARMUD of a subject ("" for null)."""
    treated = bool(subject.exposures) if study.exposure_events else subject.enrolled_arm is not None
    if subject.enrolled_arm is None:
        if treated:
            return "", "", "", "", UNPLANNED, "Treated without assignment to an arm"
        return "", "", "", "", SCREEN_FAILURE if subject.screen_failed else NOT_ASSIGNED, ""
    code, name = arm_code_and_name(protocol, subject.enrolled_arm)
    if not treated:
        return code, name, "", "", NOT_TREATED, ""
    return code, name, code, name, "", ""


def dm_row(subject: Subject, protocol: Protocol, study: SdtmStudy) -> DmRow:
    """The DM record of one subject."""
    reference = subject.reference_start
    consent = subject.consent_complete_at(protocol)
    age = (
        age_in_years(subject.birth_date, consent.date())
        if subject.birth_date is not None and consent is not None
        else None
    )
    planned, planned_name, actual, actual_name, reason, unplanned = arms(subject, protocol, study)
    ended = end_of_participation(subject, protocol)
    return DmRow(
        studyid=clip(subject.study_id),
        domain="DM",
        usubjid=clip(subject.usubjid),
        subjid=clip(subject.participant_id),
        rfstdtc=iso(reference),
        rfendtc=iso(max(subject.exposures, default=None)),
        rfxstdtc=iso(min(subject.exposures, default=None)),
        rfxendtc=iso(max(subject.exposures, default=None)),
        rficdtc=iso(consent),
        rfpendtc=iso(ended),
        dthdtc="",
        dthfl="",
        siteid=clip(subject.site_id),
        age=age,
        ageu="YEARS" if age is not None else "",
        sex=subject.sex or "U",
        race="",
        armcd=planned,
        arm=planned_name,
        actarmcd=actual,
        actarm=actual_name,
        armnrs=reason,
        actarmud=unplanned,
        country=study.country,
        dmdtc=iso(subject.registered_at),
        dmdy=study_day(subject.registered_at, reference),
    )


def build_dm(events: Iterable[ParticipantEvent], protocol: Protocol, study: SdtmStudy) -> list[DmRow]:
    """DM records of every participant with an event, sorted by STUDYID and USUBJID."""
    rows = [dm_row(subject, protocol, study) for subject in subjects(events, study).values()]
    return sorted(rows, key=lambda row: (row.studyid, row.usubjid))
