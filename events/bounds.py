"""How much one participant's state may hold: the bound that keeps every snapshot under the
broker's message limit, whatever an upstream system sends.

A state grows in two ways. Seen event ids (for de-duplication) are bounded by count
(``events.decide.MAX_SEEN_EVENT_IDS``: the oldest are forgotten). The *kept facts* — screening
results and assessments, G-CSF exposures, infusions, visits done, the keys of findings raised,
the findings the enrollment raised — are what rules read and cannot be forgotten without
changing a decision; so they are bounded by a hard limit instead: an event that would make a
participant keep more than ``MAX_KEPT_FACTS`` is refused as input that breaks the contract
(``ContractError`` of kind ``participant_state_full``). The live service dead-letters it with
the reason and raises an operations alert; a replay reports and skips it alike; the partition
and every other participant go on. A whole trial of a participant keeps well under a hundred
(the 300 participants simulated with seed 7 keep 22 at most, at any point of their trial).

Why the bound holds the snapshot under the broker's 1 MiB: every kept fact is a contract event
whose fields are all bounded (``contracts.participant_events``), at most about 2 KB in a
snapshot, or a key or a timestamp. Besides them a state holds one latest event of a few kinds
(the largest, a medical history and a classification, about 190 KB each once 64 KiB of input
is written out with its characters escaped), the 10,000 seen ids (about 210 KB), and after
enrollment the packed screening record (itself bounded alike, compressed) in place of the
screening events. The largest state the bound allows encodes to about 600 KB
(tests/unit/test_state_bounds.py builds it from the largest events the contract accepts and
measures it).
"""

from __future__ import annotations

from contracts import ContractError, ParticipantEvent, Violation
from protocol.state import ParticipantState

MAX_KEPT_FACTS = 250
"""Kept facts a participant's state holds at most (see the module docstring)."""

PARTICIPANT_STATE_FULL = "participant_state_full"
"""The violation kind of an event refused by the bound (a bounded dead-letter reason, a metric label)."""


def kept_facts(state: ParticipantState, raised: frozenset[str] | None = None) -> int:
    """The facts ``state`` keeps that no bound forgets (``raised``: its raised keys, if not the state's)."""
    return (
        sum(map(len, state.labs.values()))
        + len(state.sledai)
        + len(state.ecog)
        + len(state.gcsf)
        + len(state.csf)
        + len(state.bilag)
        + len(state.infusions_at)
        + len(state.visits_done)
        + len(state.raised if raised is None else raised)
        + len(state.enrollment_findings)
    )


def check_bound(
    before: ParticipantState, after: ParticipantState, raised: frozenset[str], event: ParticipantEvent, bound: int
) -> None:
    """Refuse an event that would make a participant keep more than ``bound`` facts.

    An event that keeps the count where it was (a correction replacing a result) passes even at
    the bound: only growth beyond it is refused.

    Raises:
        ContractError: one ``participant_id`` violation of kind ``participant_state_full``.
    """
    count = kept_facts(after, raised)
    if count <= bound or count <= kept_facts(before):
        return
    problem = (
        f"participant {event.participant_id!r} keeps {bound} facts, the most one participant's state holds; "
        f"this {event.event_type} would add to them (a runaway upstream? see the operations alert)"
    )
    raise ContractError(
        [Violation("participant_id", problem, PARTICIPANT_STATE_FULL)],
        event_type=event.event_type,
        event_id=str(event.event_id),
    )
