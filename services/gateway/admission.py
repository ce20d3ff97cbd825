"""What the gateway requires of an event beyond the contract, and how it stamps it with its source.

Shared by every way in (contract JSON, FHIR, HL7 v2): an endpoint parses its body into contract-v1
events, then calls :func:`admit`, which returns the events to publish or raises
:class:`RejectedError` listing every problem of every event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contracts import ContractError, ParticipantEvent, encode, parse_event
from services.gateway.registry import REGISTERED, ParticipantRegistry
from services.gateway.sources import Source

NEEDS_REGISTRATION = frozenset({"ScreeningLabResulted", "LabResultCorrected", "LabResultRetracted"})
"""Event types refused for a participant the registry does not know (a lab result for a wrong id)."""

NOT_FROM_SOURCES = frozenset({"ClockTicked"})
"""Event types no source may send: ClockTicked is the scheduler's event-time watermark."""


@dataclass(frozen=True)
class Problem:
    """One reason an event of a request is refused.

    Attributes:
        position: where the event is in the request: 0-based index (a JSON array or object) or
            1-based line (NDJSON), as ``where`` says; endpoints of other formats choose their own.
        field: the dotted field path (``<message>`` for the whole event).
        problem: what is wrong, possibly quoting a bounded excerpt of the input.
        reason: the metric label: contract, site, study, unregistered, not_a_source_event.
        where: ``"index"`` or ``"line"`` (the key of ``position`` in the response).
    """

    position: int
    field: str
    problem: str
    reason: str = "contract"
    where: str = "index"

    def as_json(self) -> dict[str, Any]:
        return {self.where: self.position, "field": self.field, "problem": self.problem}


class RejectedError(ValueError):
    """Some events of a request are refused: none of the request is published.

    Attributes:
        problems: every problem of every refused event, in request order.
    """

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def contract_problems(error: ContractError, position: int, where: str = "index") -> list[Problem]:
    """Every violation of a ``ContractError`` as a :class:`Problem` at ``position``."""
    return [Problem(position, v.field, v.problem, "contract", where) for v in error.violations]


def admit(
    events: Sequence[tuple[int, ParticipantEvent]],
    source: Source,
    registry: ParticipantRegistry,
    study_id: str,
    where: str = "index",
) -> list[ParticipantEvent]:
    """Check events against the source's registration and the study, and stamp them.

    ``site_id`` must be the source's site (a different one is refused, never rewritten: it means
    the sender mixed up its sites); ``study_id`` the gateway's study; a participant registered
    (in the log, or earlier in this request) must be registered at the source's site, whatever
    the event — a registration in the request never re-homes one the log knows; a lab result's
    participant must be registered.
    ``source.system`` becomes the source's name (``source.actor`` and ``recorded_at_from`` are kept).

    Args:
        events: (position, event) pairs in request order.
        source: the authenticated source.
        registry: the registered participants.
        study_id: the study this gateway feeds.
        where: how positions are named in problems (``"index"`` or ``"line"``).

    Returns:
        The stamped events, in order.

    Raises:
        RejectedError: with every problem found.
    """
    problems: list[Problem] = []
    stamped: list[ParticipantEvent] = []
    registering: dict[str, str] = {}
    for position, event in events:
        found: list[Problem] = []
        if event.event_type in NOT_FROM_SOURCES:
            found.append(
                Problem(
                    position,
                    "event_type",
                    f"{event.event_type} is the scheduler's; sources do not send it",
                    "not_a_source_event",
                    where,
                )
            )
        if event.study_id != study_id:
            found.append(
                Problem(position, "study_id", f"is {event.study_id!r}; this gateway feeds {study_id!r}", "study", where)
            )
        if event.site_id != source.site:
            problem = f"is {event.site_id!r}; source {source.name!r} is registered for site {source.site!r}"
            found.append(Problem(position, "site_id", problem, "site", where))
        pid = event.participant_id
        # The log's registration stands: one inside the request never re-homes a participant.
        site = registry.site_of(pid) or registering.get(pid)
        if site is None:
            if event.event_type == REGISTERED:
                registering[pid] = event.site_id
            elif event.event_type in NEEDS_REGISTRATION:
                problem = f"{pid!r} is not registered in {study_id}"
                found.append(Problem(position, "participant_id", problem, "unregistered", where))
        elif site != source.site:
            problem = f"{pid!r} is registered at site {site!r}; source {source.name!r} sends for site {source.site!r}"
            found.append(Problem(position, "participant_id", problem, "site", where))
        if not found:
            # Only the system is the source's: the actor, and whether recorded_at is the receipt
            # time (recorded_at_from), stay as the mapper set them.
            event = event.model_copy(update={"source": event.source.model_copy(update={"system": source.name})})
            found = _check_encoded(event, position, where)
        problems += found
        stamped.append(event)
    if problems:
        raise RejectedError(problems)
    return stamped


def _check_encoded(event: ParticipantEvent, position: int, where: str) -> list[Problem]:
    """The bytes published must be a contract-v1 event too: ``encode`` writes omitted optional
    fields out, which could take an event at the size limit past it."""
    try:
        parse_event(encode(event))
    except ContractError as e:
        return contract_problems(e, position, where)
    return []
