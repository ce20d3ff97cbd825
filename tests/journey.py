"""A participant's journey through NCT06904729 as contract-v1 events, for table-driven rule tests.

``journey()`` with no arguments is a clean participant (like E-01 of the shared example): every
assessment present and in range, consent before any procedure, the right dose at the right time,
every visit in its window. It raises nothing. Each keyword changes one thing, so a test case reads
as the one clinical fact it is about. The journey is the protocol package's own
(``protocol/nct06904729/kit/journeys.py``, the base of its Gherkin scenarios): one builder for
both.

Days are counted from consent (day 0 = 2025-11-03); enrollment is on day 10, infusion on day 30.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from contracts import Finding, FindingSuperseded, Output, ParticipantEvent
from events import process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from protocol.nct06904729.kit.journeys import ENROLLED, HISTORY, INFUSED, LAB_DAY, ParticipantJourney, at

__all__ = ["ENROLLED", "HISTORY", "INFUSED", "LAB_DAY", "at", "journey", "outputs", "replay", "rule_ids"]


def journey(**changes: Any) -> list[ParticipantEvent]:
    """A participant's events in log order (the keywords of ``ParticipantJourney``).

    ``labs`` overrides screening labs by analyte: a (value, unit, ULN) triple, a (LOINC, triple)
    pair for another code, or None to leave it out. ``visits`` maps a visit code to its day after
    infusion, or None for a missed visit. ``extra`` events are appended at the end.
    """
    for name, kind in (("labs", dict), ("visits", dict), ("extra", list), ("history", dict)):
        if changes.get(name) is not None:
            changes[name] = kind(changes[name])
    return ParticipantJourney(**changes).events()


def outputs(events: Sequence[ParticipantEvent]) -> list[Output]:
    """Every output the events give (findings, FindingSuperseded), in order, through the one processing step."""
    states: dict[str, ParticipantState] = {}
    found: list[Output] = []
    for e in events:
        step = process(states.get(e.participant_id) or ParticipantState(e.participant_id), e, PROTOCOL)
        states[e.participant_id] = step.state
        found += step.findings
    return found


def replay(events: Sequence[ParticipantEvent]) -> list[Finding]:
    """Every finding the events raise, in order (FindingSuperseded left out: see ``outputs``)."""
    return [f for f in outputs(events) if not isinstance(f, FindingSuperseded)]


def rule_ids(events: Sequence[ParticipantEvent]) -> list[str]:
    """The rule ids the events raise, in order."""
    return [f.rule_id for f in replay(events)]
