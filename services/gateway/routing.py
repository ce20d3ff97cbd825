"""Which study each event of a request belongs to, and whether its source may send for that study.

One gateway serves several studies. Each study has its own participant registry (folded from its
own participant-events topic) and its own topic to publish to. A source is registered for one or
more studies (``trialguard sources add NAME --site SITE --study A [--study B]``); it may send for
those studies only.

- Contract JSON names the study of each event (``study_id``): it must be a study the gateway
  serves and one its source is registered for, else the event is refused naming ``study_id``.
- FHIR and HL7 v2 messages name no study: each result goes to the study its participant is
  registered in, among the studies of its source. A participant registered in none of them is
  refused naming ``participant_id`` (whatever other study may know the id: a source learns
  nothing about studies it does not send for); one registered in several of them is refused too
  (the sender must use contract JSON, which names the study).

Then each study's events go through that study's admission (:func:`admission.admit`: site,
registration, contract) and are published to that study's topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from contracts import ParticipantEvent
from services.gateway.admission import Problem, RejectedError, admit
from services.gateway.registry import ParticipantRegistry
from services.gateway.sources import Source


class Participants:
    """The registered participants of every study the gateway serves, one registry per study.

    Args:
        registries: study id → its registry, in the order the studies are served.
    """

    def __init__(self, registries: Mapping[str, ParticipantRegistry]) -> None:
        self.registries = dict(registries)

    @property
    def studies(self) -> tuple[str, ...]:
        return tuple(self.registries)

    def published(self, event: ParticipantEvent) -> bool:
        """Whether this event is on its study's participant-events already (as far as remembered)."""
        registry = self.registries.get(event.study_id)
        return registry is not None and registry.published(event.event_id)

    def note(self, events: Iterable[ParticipantEvent]) -> None:
        """Add the registrations and event ids of published events to their studies' registries."""
        for event in events:
            registry = self.registries.get(event.study_id)
            if registry is not None:
                registry.note([event])

    def studies_of(self, participant_id: str, among: Iterable[str]) -> list[str]:
        """The studies among ``among`` (that this gateway serves) the participant is registered in."""
        return [s for s in among if s in self.registries and self.registries[s].site_of(participant_id) is not None]

    def __len__(self) -> int:
        return sum(len(r) for r in self.registries.values())


def mapping_study(source: Source, participants: Participants) -> str:
    """The study a FHIR or HL7 mapper stamps events with before :func:`route_by_participant`
    routes them: the source's first study this gateway serves (else the gateway's first)."""
    return next((s for s in source.studies if s in participants.registries), participants.studies[0])


def route_by_participant(
    events: Sequence[ParticipantEvent], source: Source, participants: Participants, where: str = "index"
) -> list[ParticipantEvent]:
    """FHIR and HL7 results: each event's ``study_id`` set to its participant's study among the
    source's studies.

    Raises:
        RejectedError: a participant registered in none of the source's studies, or in several.
    """
    problems: list[Problem] = []
    routed: list[ParticipantEvent] = []
    for position, event in enumerate(events):
        pid = event.participant_id
        found = participants.studies_of(pid, source.studies)
        if len(found) == 1:
            routed.append(event.model_copy(update={"study_id": found[0]}))
            continue
        if not found:
            studies = ", ".join(source.studies)
            problem = f"{pid!r} is not registered in a study of source {source.name!r} ({studies})"
            problems.append(Problem(position, "participant_id", problem, "unregistered", where))
        else:
            problem = f"{pid!r} is registered in several studies of this source ({', '.join(found)}): send contract "
            problems.append(Problem(position, "participant_id", problem + "JSON naming study_id", "study", where))
        routed.append(event)
    if problems:
        raise RejectedError(problems)
    return routed


def admit_to_studies(
    events: Sequence[tuple[int, ParticipantEvent]], source: Source, participants: Participants, where: str = "index"
) -> list[ParticipantEvent]:
    """Check each event's study against the gateway's and the source's, then admit each study's
    events under that study (:func:`admission.admit`).

    Returns:
        The stamped events, in request order.

    Raises:
        RejectedError: every problem of every event, in request order; nothing is admitted.
    """
    problems: list[Problem] = []
    by_study: dict[str, list[tuple[int, ParticipantEvent]]] = {}
    for position, event in events:
        study = event.study_id
        if study not in participants.registries:
            serves = ", ".join(repr(s) for s in participants.studies)
            problems.append(Problem(position, "study_id", f"is {study!r}; this gateway feeds {serves}", "study", where))
        elif study not in source.studies:
            problem = f"is {study!r}; source {source.name!r} is not registered for that study"
            problems.append(Problem(position, "study_id", problem, "source_study", where))
        else:
            by_study.setdefault(study, []).append((position, event))
    admitted: list[tuple[int, ParticipantEvent]] = []
    for study, group in by_study.items():
        try:
            stamped = admit(group, source, participants.registries[study], study, where)
        except RejectedError as e:
            problems += e.problems
            continue
        admitted += zip((position for position, _ in group), stamped, strict=True)
    if problems:
        raise RejectedError(sorted(problems, key=lambda p: p.position))
    return [event for _, event in sorted(admitted, key=lambda pair: pair[0])]
