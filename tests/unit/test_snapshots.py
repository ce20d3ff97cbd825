"""Participant-state snapshots: a lossless, versioned round trip; unreadable input is an error."""

from __future__ import annotations

import json
import uuid

import pytest

from events import process, snapshots
from events.decide import MAX_SEEN_EVENT_IDS
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from protocol.state import SeenIds, evolve
from tests.builders import event
from tests.journey import journey


def state_after(events: list) -> ParticipantState:  # type: ignore[type-arg]
    state = ParticipantState("P-0001")
    for e in events:
        state = process(state, e, PROTOCOL).state
    return state


@pytest.mark.parametrize(
    "events",
    [
        [],
        journey(),
        journey(visits={"D14": None}, gcsf=(-30, None), labs={"hbsag": ("positive", None, None)}),
        journey(enroll=False),
    ],
    ids=["new", "whole journey", "missed visit, G-CSF, positive HBsAg", "screening only"],
)
def test_snapshot_round_trip_is_lossless(events: list) -> None:  # type: ignore[type-arg]
    state = state_after(events)
    data = snapshots.encode(state)
    assert snapshots.decode(data) == state
    assert snapshots.encode(snapshots.decode(data)) == data


def test_a_restored_state_decides_as_the_original_would() -> None:
    events = journey(visits={"M24": None})
    state = state_after(events)
    clock = event("ClockTicked", participant="P-0001", at="2028-02-10T10:00:00+08:00")
    original = process(state, clock, PROTOCOL).findings
    restored = process(snapshots.decode(snapshots.encode(state)), clock, PROTOCOL).findings
    assert [f.rule_id for f in original] == ["VISIT-02"]
    assert restored == original


def test_snapshot_carries_its_version() -> None:
    assert json.loads(snapshots.encode(ParticipantState("P-1")))["snapshot_version"] == snapshots.SNAPSHOT_VERSION


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"not json", "not a participant-state snapshot"),
        (b'{"participant_id": "P-1"}', "not a participant-state snapshot"),
        (b'{"snapshot_version": 99}', "version 99"),
        (b'{"snapshot_version": 1, "participant_id": "P-1"}', "cannot be read"),
    ],
)
def test_unreadable_snapshots_are_errors(data: bytes, words: str) -> None:
    with pytest.raises(snapshots.SnapshotError, match=words):
        snapshots.decode(data)


def test_seen_event_ids_are_bounded_oldest_first() -> None:
    state = ParticipantState("P-1")
    first = event("ClockTicked", participant="P-1", at="2025-01-01T00:00:00+08:00")
    state = process(state, first, PROTOCOL).state
    for i in range(MAX_SEEN_EVENT_IDS):
        tick = event(
            "ClockTicked",
            participant="P-1",
            at="2025-01-01T00:00:00+08:00",
            event_id=f"00000000-0000-4000-8000-{i:012d}",
        )
        state = process(state, tick, PROTOCOL).state
    assert len(state.seen_event_ids) == MAX_SEEN_EVENT_IDS
    assert first.event_id not in state.seen_event_ids


def test_a_version_1_snapshot_still_restores() -> None:
    """Version 1 wrote the seen event ids as a list of UUID strings; snapshots of that version
    may still be on the topic and must restore to the same state."""
    state = state_after(journey(visits={"D14": None}))
    body = json.loads(snapshots.encode(state))
    version_1 = {**body, "snapshot_version": 1, "seen_event_ids": [str(i) for i in state.seen_event_ids]}
    for v3 in ("screening", "enrollment_findings"):  # written from version 3 on
        del version_1[v3]
    restored = snapshots.decode(json.dumps(version_1).encode())
    assert restored == evolve(state, screening=None, enrollment_findings=())
    assert list(restored.seen_event_ids) == list(state.seen_event_ids)  # oldest first, still


def test_a_snapshot_from_a_newer_version_is_refused() -> None:
    data = snapshots.encode(ParticipantState("P-1")).replace(b'"snapshot_version":5', b'"snapshot_version":6')
    with pytest.raises(snapshots.SnapshotError, match="version 6"):
        snapshots.decode(data)


def test_seen_ids_match_whole_ids_only() -> None:
    """Packed ids are one run of bytes: 16 bytes straddling two ids are not an id seen."""
    a, b = uuid.UUID(bytes=bytes(range(16))), uuid.UUID(bytes=bytes(range(16, 32)))
    straddling = uuid.UUID(bytes=bytes(range(8, 24)))
    seen = SeenIds().added(a, 10).added(b, 10)
    assert a in seen
    assert b in seen
    assert straddling not in seen
    assert list(seen) == [a, b]
    assert len(seen) == 2
    assert list(seen.added(straddling, 2)) == [b, straddling]  # the oldest dropped beyond the bound
    with pytest.raises(ValueError, match="16 bytes each"):
        SeenIds(b"123")
