"""Snapshot rounds without a broker: where a restore starts from (the state topic's reads faked),
the batch view of a partition's state, and the fetched records a partition's worker takes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
import structlog

from events import snapshots
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings
from services.rules import SNAPSHOT_OFFSET, RecordHandler, rounds
from services.rules.partitions import OwnedPartition
from services.rules.records import Overlay
from tests.builders import event_dict

SETTINGS = KafkaSettings("127.0.0.1:1", "NCT06904729", "unit")


@dataclass
class FakeRecord:
    offset: int
    key: bytes | None = None
    value: bytes | None = None
    topic: str = SETTINGS.topics.participant_events
    partition: int = 0


def lab(participant: str) -> bytes:
    return json.dumps(
        event_dict("ScreeningLabResulted", {"loinc": "751-8", "value": 2.1, "unit": "10*9/L"}, participant=participant)
    ).encode()


def state_of(participant: str) -> ParticipantState:
    states: dict[str, ParticipantState] = {}
    RecordHandler(SETTINGS, PROTOCOL).handle(FakeRecord(0, participant.encode(), lab(participant)), states)
    return states[participant]


class FakeLog:
    """participant-events and participant-state of one partition, as ``rounds`` reads them."""

    def __init__(self, events: list[bytes], snapshot_records: list[tuple[bytes, bytes, int | None]]) -> None:
        self.events = events
        self.snapshots = snapshot_records

    async def read(self, bootstrap: str, topic: str, partition: int, start: int = 0) -> Any:
        if topic == SETTINGS.topics.participant_state:
            for offset, (key, value, at) in enumerate(self.snapshots):
                headers = [] if at is None else [(SNAPSHOT_OFFSET, str(at).encode())]
                yield type("R", (), {"offset": offset, "key": key, "value": value, "headers": headers})()
        else:
            for offset, value in enumerate(self.events):
                if offset >= start:
                    pid = json.loads(value)["participant_id"].encode()
                    yield FakeRecord(offset, pid, value)


@pytest.fixture
def log(monkeypatch: pytest.MonkeyPatch) -> FakeLog:
    fake = FakeLog([lab(f"P-{n % 3}") for n in range(10)], [])
    monkeypatch.setattr(rounds, "read_partition", fake.read)
    return fake


async def restored(committed: int | None) -> tuple[rounds.Restored, list[str]]:
    with structlog.testing.capture_logs() as logs:
        result = await rounds.restore(SETTINGS, RecordHandler(SETTINGS, PROTOCOL), 0, committed)
    return result, [line["event"] for line in logs]


async def test_snapshots_of_a_round_plus_the_tail_after_it(log: FakeLog) -> None:
    upto_round = {f"P-{n}": state_of(f"P-{n}") for n in range(2)}  # stand-ins: only their identity matters here
    log.snapshots = [(pid.encode(), snapshots.encode(s), 7) for pid, s in upto_round.items()]
    result, events = await restored(10)
    assert (result.round_offset, result.events_read, result.snapshots_read) == (7, 3, 2)
    assert result.changed == {"P-1", "P-2", "P-0"}  # offsets 7, 8, 9
    assert events == []


async def test_the_last_record_of_the_state_partition_names_the_round(log: FakeLog) -> None:
    state = snapshots.encode(state_of("P-0"))
    log.snapshots = [(b"P-0", state, 3), (b"P-1", state, 6), (b"P-0", state, 9)]
    result, _ = await restored(10)
    assert (result.round_offset, result.changed) == (9, {"P-0"})


async def test_no_snapshot_rebuilds_from_offset_0_and_says_so_when_offsets_were_committed(log: FakeLog) -> None:
    result, events = await restored(10)
    assert (result.round_offset, result.events_read, result.changed) == (None, 10, {"P-0", "P-1", "P-2"})
    assert events == ["snapshots_missing"]
    fresh, events = await restored(None)
    assert (dict(fresh.states), fresh.events_read, events) == ({}, 0, [])


async def test_an_unreadable_snapshot_rebuilds_from_offset_0(log: FakeLog) -> None:
    log.snapshots = [(b"P-0", b"not a snapshot", 5)]
    result, events = await restored(10)
    assert (result.round_offset, result.events_read) == (None, 10)
    assert events == ["snapshots_unreadable"]


async def test_snapshots_without_the_header_reflect_the_committed_offset(log: FakeLog) -> None:
    # Written by a version that snapshotted every changed participant in every batch.
    log.snapshots = [(b"P-0", snapshots.encode(state_of("P-0")), None)]
    result, _ = await restored(10)
    assert (result.round_offset, result.events_read, result.changed) == (10, 0, set())


async def test_a_round_ahead_of_the_committed_offset_is_trusted_and_the_log_processed_from_0(log: FakeLog) -> None:
    log.snapshots = [(b"P-0", snapshots.encode(state_of("P-0")), 50)]  # the group's offsets were lost or reset
    result, events = await restored(10)
    assert (result.round_offset, result.events_read) == (None, 10)
    assert events == ["snapshots_ahead"]
    lost, _ = await restored(None)
    assert (lost.round_offset, lost.events_read, set(lost.states)) == (None, 0, {"P-0"})


async def test_the_progress_record_outlives_the_groups_offsets(log: FakeLog) -> None:
    # The group's offsets expired (7 days with the group empty) or were deleted after a kill -9:
    # the progress record says where processing got to, so [7, 10) is processed again as
    # replaying (nothing published twice) and the consumer resumes at 10, not at 0.
    upto_round = {f"P-{n}": state_of(f"P-{n}") for n in range(2)}
    log.snapshots = [(pid.encode(), snapshots.encode(s), 7) for pid, s in upto_round.items()]
    log.snapshots.append((rounds.PROGRESS_KEY, b"10", 7))
    # Missing or ahead (reset by hand): ignored, with a warning. Behind: as after a kill, since the
    # group's offset is committed after each transaction (``group_offsets``).
    expected = {None: ["group_offset_ignored"], 3: ["group_offset_behind"], 10: [], 12: ["group_offset_ignored"]}
    for group, logged in expected.items():
        result, events = await restored(group)
        assert (result.committed, result.round_offset, result.events_read) == (10, 7, 3)
        assert "P-0" in result.states
        assert rounds.PROGRESS_KEY.decode() not in result.states
        assert events == logged


async def test_without_a_progress_record_the_groups_offset_stands(log: FakeLog) -> None:
    log.snapshots = [(b"P-0", snapshots.encode(state_of("P-0")), 7)]
    result, _ = await restored(10)
    assert (result.committed, result.round_offset) == (10, 7)


def test_the_progress_record_carries_the_committed_offset_and_the_round() -> None:
    out = rounds.progress_record("state", 120, 100)
    assert (out.key, out.value) == (b"#progress", b"120")
    assert dict(out.headers) == {SNAPSHOT_OFFSET: b"100", rounds.PROGRESS_OFFSET: b"120"}


def test_a_round_writes_each_snapshot_with_the_offset_it_reflects() -> None:
    states = {"P-0": state_of("P-0")}
    (out,) = rounds.snapshot_records("state", states, ["P-0"], 42)
    assert (out.topic, out.key, out.headers) == ("state", b"P-0", ((SNAPSHOT_OFFSET, b"42"),))
    assert snapshots.decode(out.value or b"") == states["P-0"]


def test_the_overlay_reads_through_and_keeps_writes_apart() -> None:
    base = {"P-0": state_of("P-0")}
    changed: dict[str, ParticipantState] = {}
    view = Overlay(base, changed)
    assert view.get("P-0") is base["P-0"]
    assert view.get("P-9") is None
    view["P-1"] = state_of("P-1")
    view["P-0"] = state_of("P-1")
    assert set(changed) == {"P-0", "P-1"}
    assert base["P-0"] == state_of("P-0")
    assert view["P-0"] is changed["P-0"]
    assert sorted(view) == ["P-0", "P-1"]
    assert len(view) == 2
    with pytest.raises(KeyError):
        view["P-9"]


def test_a_partition_takes_fetched_records_once_in_order() -> None:
    part = OwnedPartition(0, producer=None, next_offset=5)
    part.add([FakeRecord(n) for n in range(3, 8)])  # 3 and 4 were committed before a re-open
    part.add([FakeRecord(n) for n in range(6, 10)])  # 6 and 7 fetched again
    assert part.wake.is_set()
    assert [r.offset for r in part.take(3)] == [5, 6, 7]
    assert [r.offset for r in part.take(3)] == [8, 9]
    assert part.take(3) == []


def test_a_round_is_due_after_the_interval_and_when_none_was_written() -> None:
    part = OwnedPartition(0, producer=None)
    assert part.round_due(10, 100)
    part.round_offset = 10
    assert not part.round_due(109, 100)
    assert part.round_due(110, 100)


def test_partitions_fed_alike_write_their_rounds_at_different_offsets() -> None:
    from services.metrics import Metrics
    from services.rules.transactions import Transactions

    transactions = Transactions(RecordHandler(SETTINGS, PROTOCOL), SETTINGS.topics, Metrics(), None, 1600)
    every = [transactions.round_every(OwnedPartition(n, producer=None)) for n in range(4)]
    assert every == [1600, 1700, 1800, 1900]
