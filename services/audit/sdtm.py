"""SDTM DV (protocol deviations) and SUPPDV rows from findings, participant events and reviews.

Pure: no I/O, no clock. The same findings, events and reviews always give the same rows, so an
auditor's offline export (a replay of the log) and the export from the broker agree row for row.

Choices (SDTMIG 3.4, DV domain):

* **USUBJID** is ``STUDYID-SITEID-SUBJID`` (e.g. ``NCT06904729-GZ-01-E-03``). Site ids contain
  hyphens, so it is an identifier, not something to split: participant ids are unique within the
  study (they are the Kafka key), so the study id and participant id alone make it unique; the site
  is there for the reader.
* **DVSEQ** numbers each participant's deviations 1, 2, 3… in the order the protocol raised them:
  the participant's log order (the replay's order, and the order on the deviations topic, since a
  participant's findings share one partition). Appending events only appends findings, so every
  existing row keeps its DVSEQ in a later export. A finding raised later whose DVSTDTC is *earlier*
  (a late-recorded event) gets the next number, not a slot in between: rows are ordered by DVSEQ,
  not by date, and DVSTDTC says when it happened. (Numbering by (DVSTDTC, id) would renumber the
  rows after it, breaking references to them from earlier submissions.)
* **DVDECOD** comes from the sponsor-defined list ``DECOD_BY_RULE`` below (one coded term per rule,
  with the TransCelerate-style wording of common deviation kinds); a rule it does not name falls
  back to its category's term in ``DECOD_BY_CATEGORY``.
* **DVSCAT** is the protocol section the rule enforces (``Inclusion 8``, ``Interventions: dose``).
* **EPOCH** is the epoch the participant was in when the trigger happened: the lifecycle
  (``services.presentation.lifecycle.lifecycle``) of their events strictly before the trigger in event
  time (at the same instant: earlier in the log), the trigger excluded, mapped by the study's
  ``SdtmStudy.epochs``. NCT06904729: before enrollment SCREENING; enrolled to lymphodepletion
  TREATMENT; after the CAR-T infusion FOLLOW-UP. A
  late-recorded event that happened before a trigger can move that row's EPOCH in a later export:
  the row then tells what really happened.
* **DVSTDTC** is the trigger's event time in ISO 8601 with its UTC offset, as the source recorded it.
* **DVSTDY** is DVSTDTC's study day from the participant's reference start (DM.RFSTDTC, the first
  exposure for NCT06904729; ``services.audit.sdtm_subjects.study_day``): no day 0, negative
  before it, null for a participant never exposed.
* Character values longer than 200 bytes of UTF-8 (the XPT v5 limit) are cut at 200 bytes on a
  character boundary (never inside a multi-byte character); none of the catalogue's values is that
  long, so in practice nothing is cut.
* Safety alerts are not protocol deviations: they are left out.

SUPPDV holds what DV has no variable for, one row per deviation and qualifier, linked by
``IDVAR=DVSEQ``, sorted by its keys: ``DVSEVR`` (ICH E3 severity, IMPORTANT or MINOR, QORIG Assigned
by the sponsor's rule catalogue, QEVAL CLINICAL STUDY SPONSOR; not ``DVSEV``, which is the model's
``--SEV``) and ``DVREVST`` (review status from the dashboard's FindingReviewed events, OPEN when
never reviewed, QORIG Derived, no evaluator).
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import astuple, dataclass, fields
from typing import Any

from contracts import DeviationRaised, FindingReviewed, FindingSuperseded, Output, ParticipantEvent, ReviewStatus
from contracts.reviews import ReviewTransitionError, check_transition
from protocol.model import Protocol
from services.audit.sdtm_spec import DV, MAX_LABEL, MAX_NAME, MAX_VALUE_BYTES, SUPPDV
from services.audit.sdtm_study import CAR_T_EPOCHS, SCREENING, SdtmStudy, sdtm_study
from services.audit.sdtm_subjects import clip, iso, study_day, subjects, usubjid
from services.presentation.lifecycle import lifecycle

__all__ = ["MAX_LABEL", "MAX_NAME", "MAX_VALUE_BYTES", "clip", "iso", "usubjid"]
"""Re-exported: the value rules live in ``sdtm_subjects`` and ``sdtm_spec``, shared with DM."""

DV_LABELS: dict[str, str] = DV.labels
"""DV variables in SDTMIG 3.4 order, with their SDTM labels."""

SUPPDV_LABELS: dict[str, str] = SUPPDV.labels
"""SUPPQUAL variables in SDTMIG 3.4 order, with their labels."""

SEVERITY_QNAM, SEVERITY_QLABEL = "DVSEVR", "Deviation Severity"
"""Not ``DVSEV``: ``--SEV`` is an SDTM model variable (Events class), and a SUPP-- QNAM must not
be a model variable name (CORE rule CG0314), or a later SDTM version could give it a meaning."""

REVIEW_QNAM, REVIEW_QLABEL = "DVREVST", "Review Status"

SPONSOR_EVALUATOR = "CLINICAL STUDY SPONSOR"
"""The EVAL codelist's term for the sponsor (C78735), not ``SPONSOR``."""

DECOD_BY_RULE: tuple[tuple[str, str], ...] = (
    (r"ELIG-IN08", "INFORMED CONSENT NOT OBTAINED"),
    (r"ELIG-IN\d+", "INCLUSION CRITERION NOT MET"),
    (r"ELIG-EX\d+", "EXCLUSION CRITERION MET"),
    (r"ELIG-MISSING", "ELIGIBILITY ASSESSMENT NOT DONE"),
    (r"CONSENT-01", "PROCEDURE BEFORE INFORMED CONSENT"),
    (r"CONSENT-02", "PROCEDURE AFTER CONSENT WITHDRAWN"),
    (r"SEQ-01", "ELIGIBILITY NOT CONFIRMED BEFORE ENROLLMENT"),
    (r"SEQ-02", "STUDY PROCEDURE OUT OF SEQUENCE"),
    (r"SEQ-03", "ADDITIONAL DOSE ADMINISTERED"),
    (r"SEQ-04", "DOSE ADMINISTERED OUTSIDE WINDOW"),
    (r"DOSE-01", "INCORRECT DOSE ADMINISTERED"),
    (r"VISIT-01", "VISIT OUTSIDE WINDOW"),
    (r"VISIT-02", "MISSED VISIT"),
)
"""Sponsor-defined DVDECOD per rule id (full match, first pattern wins)."""

DECOD_BY_CATEGORY: dict[str, str] = {
    "ELIGIBILITY": "ELIGIBILITY CRITERIA NOT MET",
    "INFORMED CONSENT": "INFORMED CONSENT DEVIATION",
    "STUDY PROCEDURE": "STUDY PROCEDURE DEVIATION",
    "INVESTIGATIONAL PRODUCT": "INVESTIGATIONAL PRODUCT DEVIATION",
    "VISIT SCHEDULE": "VISIT SCHEDULE DEVIATION",
}
"""DVDECOD of a rule ``DECOD_BY_RULE`` does not name (a rule added to the catalogue later)."""

EPOCH_OF_STAGE = CAR_T_EPOCHS
"""EPOCH for each base stage of ``lifecycle()`` in NCT06904729 (a study's own in ``SdtmStudy.epochs``)."""


@dataclass(frozen=True)
class DvRow:
    """One DV record (field names are the variables, lower case)."""

    studyid: str
    domain: str
    usubjid: str
    dvseq: int
    dvrefid: str
    dvspid: str
    dvterm: str
    dvdecod: str
    dvcat: str
    dvscat: str
    epoch: str
    dvstdtc: str
    dvstdy: int | None


@dataclass(frozen=True)
class SuppRow:
    """One SUPPDV record (field names are the variables, lower case)."""

    studyid: str
    rdomain: str
    usubjid: str
    idvar: str
    idvarval: str
    qnam: str
    qlabel: str
    qval: str
    qorig: str
    qeval: str


@dataclass(frozen=True)
class SdtmDv:
    """The two datasets of an export."""

    dv: list[DvRow]
    suppdv: list[SuppRow]


def dvdecod(rule_id: str, category: str) -> str:
    """The coded term of a rule: its own from ``DECOD_BY_RULE``, else its category's."""
    for pattern, term in DECOD_BY_RULE:
        if re.fullmatch(pattern, rule_id):
            return term
    return DECOD_BY_CATEGORY.get(category, category)


def epoch_of(stage: str, epochs: Mapping[str, str] = EPOCH_OF_STAGE) -> str:
    """The EPOCH of a ``lifecycle()`` string such as ``withdrawn (after enrolled (A)), relapsed …``."""
    base = stage.removeprefix("withdrawn (after ").split(",")[0].split(" (")[0].rstrip(")")
    return epochs.get(base, SCREENING)


class Timelines:
    """Each participant's events in event-time order, to ask the epoch at a trigger.

    Args:
        events: participant events in log order (duplicates by event id count once).
        protocol: the protocol whose schedule tells when follow-up is complete.
        epochs: EPOCH per lifecycle stage (the study's).
    """

    def __init__(
        self, events: Iterable[ParticipantEvent], protocol: Protocol, epochs: Mapping[str, str] = EPOCH_OF_STAGE
    ) -> None:
        self.protocol = protocol
        self.epochs = epochs
        seen: set[uuid.UUID] = set()
        rows: dict[str, list[tuple[dt.datetime, int, uuid.UUID, dict[str, Any]]]] = {}
        for position, event in enumerate(events):
            if event.event_id in seen:
                continue
            seen.add(event.event_id)
            body = {"payload": event.payload.model_dump(mode="json")}
            rows.setdefault(event.participant_id, []).append(
                (event.occurred_at, position, event.event_id, {"event_type": event.event_type, "body": body})
            )
        for timeline in rows.values():
            timeline.sort(key=lambda row: (row[0], row[1]))
        self._rows = rows

    def epoch(self, participant_id: str, at: dt.datetime, triggers: Iterable[uuid.UUID]) -> str:
        """The epoch at ``at``: from the events before it (at ``at`` itself: before the first trigger)."""
        timeline = self._rows.get(participant_id, [])
        trigger_ids = set(triggers)
        first = min((pos for _, pos, eid, _ in timeline if eid in trigger_ids), default=None)
        end = bisect.bisect_left(timeline, at, key=lambda row: row[0])
        before = [row[3] for row in timeline[:end] if row[2] not in trigger_ids]
        if first is not None:
            before += [
                row[3] for row in timeline[end:] if row[0] == at and row[1] < first and row[2] not in trigger_ids
            ]
        return epoch_of(lifecycle(before, self.protocol), self.epochs)


def review_statuses(reviews: Iterable[FindingReviewed]) -> dict[uuid.UUID, ReviewStatus]:
    """Each reviewed finding's status: the fold of its reviews in topic order.

    A review the workflow refuses from the status it found (two people acting at once) changes
    nothing, as on the dashboard; a review delivered twice (same review id) counts once.
    """
    statuses: dict[uuid.UUID, ReviewStatus] = {}
    seen: set[uuid.UUID] = set()
    for review in reviews:
        if review.review_id in seen:
            continue
        seen.add(review.review_id)
        status = statuses.get(review.finding_id, ReviewStatus.OPEN)
        try:
            statuses[review.finding_id] = check_transition(status, review.action)
        except ReviewTransitionError:
            continue
    return statuses


def build(
    findings: Iterable[Output],
    events: Iterable[ParticipantEvent],
    protocol: Protocol,
    reviews: Iterable[FindingReviewed] = (),
    study: SdtmStudy | None = None,
) -> SdtmDv:
    """DV and SUPPDV rows of the deviations among ``findings``.

    Args:
        findings: findings in the order raised (a replay's output, or the deviations topic read
            to its end); alerts are skipped, a deviation seen twice counts once, and a
            deviation superseded (a FindingSuperseded for its id anywhere among ``findings``:
            a lab correction means it no longer holds) is left out.
        events: the participant events, in log order, for EPOCH and the study day.
        protocol: the protocol the findings were raised under.
        reviews: FindingReviewed events in topic order (none: every deviation is OPEN).
        study: the study's SDTM settings (default: those registered for the protocol's study).

    Returns:
        DV rows sorted by STUDYID, USUBJID and DVSEQ; SUPPDV rows sorted by its keys.
    """
    study = study or sdtm_study(protocol.study_id)
    events = list(events)
    timelines = Timelines(events, protocol, study.epochs)
    starts = {pid: subject.reference_start for pid, subject in subjects(events, study).items()}
    statuses = review_statuses(reviews)
    counters: dict[str, int] = {}
    seen: set[uuid.UUID] = set()
    dv: list[tuple[DvRow, DeviationRaised]] = []
    findings = list(findings)
    superseded = {f.finding_id for f in findings if isinstance(f, FindingSuperseded)}
    for finding in findings:
        if not isinstance(finding, DeviationRaised) or finding.deviation_id in seen | superseded:
            continue
        seen.add(finding.deviation_id)
        subject = usubjid(finding.study_id, finding.site_id, finding.participant_id)
        counters[subject] = counters.get(subject, 0) + 1
        epoch = timelines.epoch(finding.participant_id, finding.occurred_at, finding.trigger_event_ids)
        row = DvRow(
            studyid=clip(finding.study_id),
            domain="DV",
            usubjid=clip(subject),
            dvseq=counters[subject],
            dvrefid=str(finding.deviation_id),
            dvspid=clip(finding.rule_id),
            dvterm=clip(finding.term),
            dvdecod=dvdecod(finding.rule_id, finding.category.value),
            dvcat=finding.category.value,
            dvscat=clip(finding.protocol_reference),
            epoch=epoch,
            dvstdtc=iso(finding.occurred_at),
            dvstdy=study_day(finding.occurred_at, starts.get(finding.participant_id)),
        )
        dv.append((row, finding))
    dv.sort(key=lambda pair: (pair[0].studyid, pair[0].usubjid, pair[0].dvseq))
    return SdtmDv([row for row, _ in dv], suppdv(dv, statuses))


def suppdv(dv: list[tuple[DvRow, DeviationRaised]], statuses: Mapping[uuid.UUID, ReviewStatus]) -> list[SuppRow]:
    """Severity and review status of each DV row, sorted by SUPPDV's keys.

    The keys are STUDYID, RDOMAIN, USUBJID, IDVAR, IDVARVAL, QNAM, compared as the character
    values they are: IDVARVAL ``10`` sorts before ``2``, as a validator sorts it.
    """
    supp: list[SuppRow] = []
    for row, finding in dv:
        status = statuses.get(finding.deviation_id, ReviewStatus.OPEN)
        for qnam, qlabel, qval, qorig, qeval in (
            (SEVERITY_QNAM, SEVERITY_QLABEL, finding.severity.value.upper(), "Assigned", SPONSOR_EVALUATOR),
            (REVIEW_QNAM, REVIEW_QLABEL, status.value.upper(), "Derived", ""),
        ):
            supp.append(
                SuppRow(row.studyid, "DV", row.usubjid, "DVSEQ", str(row.dvseq), qnam, qlabel, qval, qorig, qeval)
            )
    return sorted(supp, key=lambda r: (r.studyid, r.rdomain, r.usubjid, r.idvar, r.idvarval, r.qnam))


def columns(rows: Iterable[Any], kind: type[Any]) -> dict[str, list[Any]]:
    """The rows as upper-case variable name → values, in variable order (a DataFrame's input)."""
    names = [f.name for f in fields(kind)]
    table: dict[str, list[Any]] = {name.upper(): [] for name in names}
    for row in rows:
        for name, value in zip(names, astuple(row), strict=True):
            table[name.upper()].append(value)
    return table


def check_limits(table: Mapping[str, list[Any]], labels: Mapping[str, str]) -> list[str]:
    """What breaks the XPT v5 limits in a table (empty: nothing). A guard, not a repair."""
    problems = [f"name {name} is over {MAX_NAME} characters" for name in table if len(name) > MAX_NAME]
    long_labels = [name for name, text in labels.items() if len(text) > MAX_LABEL]
    problems += [f"label of {name} is over {MAX_LABEL} characters" for name in long_labels]
    for name, values in table.items():
        too_long = [v for v in values if isinstance(v, str) and len(v.encode("utf-8")) > MAX_VALUE_BYTES]
        problems += [f"{name} has a value over {MAX_VALUE_BYTES} bytes"] if too_long else []
    return problems
