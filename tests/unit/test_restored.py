"""Restored states are decoded when first asked for, and equal what an eager decode gives."""

from __future__ import annotations

import sqlite3

import pytest

from events import process, snapshots
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services.rules.restored import RestoredStates, looks_like_a_snapshot
from services.rules.snapshot_store import SnapshotStore
from tests.journey import journey


def states() -> dict[str, ParticipantState]:
    found: dict[str, ParticipantState] = {}
    for pid in ("P-1", "P-2", "P-3"):
        state = ParticipantState(pid)
        for event in journey(visits={"D14": None}):
            state = process(state, event.model_copy(update={"participant_id": pid}), PROTOCOL).state
        found[pid] = state
    return found


def test_states_are_decoded_when_asked_for_and_equal_an_eager_decode() -> None:
    expected = states()
    restored = RestoredStates({pid: snapshots.encode(s) for pid, s in expected.items()})
    assert len(restored) == 3
    assert restored.undecoded == 3
    assert "P-2" in restored
    assert restored["P-2"] == expected["P-2"]
    assert restored.undecoded == 2
    assert restored.get("P-9") is None
    restored["P-4"] = ParticipantState("P-4")
    del restored["P-3"]
    assert sorted(restored) == ["P-1", "P-2", "P-4"]
    assert dict(restored) == {**{k: v for k, v in expected.items() if k != "P-3"}, "P-4": ParticipantState("P-4")}


@pytest.mark.parametrize("data", [b"", b"null", b'{"participant_id": "P-1"}', b'{"snapshot_version":4,"particip'])
def test_what_is_not_shaped_like_a_snapshot_is_refused_at_restore(data: bytes) -> None:
    assert not looks_like_a_snapshot(data)
    with pytest.raises(snapshots.SnapshotError, match="not a participant-state snapshot"):
        RestoredStates({"P-1": data})


def test_a_snapshot_shaped_but_unreadable_fails_when_asked_for() -> None:
    restored = RestoredStates({"P-1": b'{"snapshot_version":4,"participant_id":"P-1"}'})
    with pytest.raises(snapshots.SnapshotError):
        restored["P-1"]
    assert restored.undecoded == 1  # still there: a rebuild from the log replaces it


def test_an_undecodable_snapshot_is_reported_before_it_raises() -> None:
    reported: list[bool] = []
    restored = RestoredStates({"P-1": b'{"snapshot_version":4}'}, lambda: reported.append(True))
    assert restored.get("P-2") is None
    with pytest.raises(snapshots.SnapshotError):
        restored.get("P-1")
    assert reported == [True]


def test_participants_unchanged_since_their_round_go_to_rest_and_come_back_equal() -> None:
    expected = states()
    live = RestoredStates()
    for pid, state in expected.items():
        live[pid] = state
    captured = dict(expected)
    live["P-3"] = ParticipantState("P-3")  # changed after the round captured it: worked on, stays decoded
    live.rest_later(captured, [(pid, snapshots.encode(s)) for pid, s in captured.items()])
    assert live.rest(1) == 1  # a few at a time
    assert live.rest(100) == 1
    assert (live.decoded, live.undecoded) == (1, 2)
    assert live["P-3"] == ParticipantState("P-3")
    assert live["P-1"] == expected["P-1"]
    assert live["P-2"] == expected["P-2"]
    assert (live.decoded, live.undecoded) == (3, 0)
    assert sorted(live) == ["P-1", "P-2", "P-3"]
    assert len(live) == 3


def test_a_participant_at_rest_can_be_replaced_and_deleted() -> None:
    expected = states()
    live = RestoredStates({pid: snapshots.encode(s) for pid, s in expected.items()})
    live["P-1"] = ParticipantState("P-1")
    del live["P-2"]
    with pytest.raises(KeyError):
        del live["P-2"]
    assert dict(live) == {"P-1": ParticipantState("P-1"), "P-3": expected["P-3"]}


def test_snapshots_as_restored_move_to_disk_a_few_at_a_time_and_decode_alike() -> None:
    expected = states()
    restored = RestoredStates({pid: snapshots.encode(s) for pid, s in expected.items()})
    assert restored.rest(2) == 0  # none was decoded: nothing put to rest, two snapshots moved
    assert restored.rest(2) == 0
    assert (restored.decoded, restored.undecoded, len(restored)) == (0, 3, 3)
    assert dict(restored) == expected


def test_a_participant_kept_twice_on_disk_is_refused_whole() -> None:
    store = SnapshotStore()
    store.add([("P-1", b"{}")])
    with pytest.raises(sqlite3.IntegrityError):
        store.add([("P-2", b"{}"), ("P-1", b"{}")])
    assert (len(store), "P-2" in store, store.get("P-1")) == (1, False, b"{}")
