"""The group's offsets follow committed transactions, outside them (``services.rules.group_offsets``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError

from services.rules import group_offsets
from services.rules.group_offsets import GroupOffsets

P0, P1, P2 = (TopicPartition("events", n) for n in range(3))


class FakeConsumer:
    """An assignment and the commits asked for; a commit can be made to fail or to hang."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.commits: list[dict[TopicPartition, int]] = []
        self.failing = 0
        self.gate: asyncio.Event | None = None
        self.asked = 0
        self.called = asyncio.Event()

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.asked += 1
        self.called.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.failing:
            self.failing -= 1
            raise CommitFailedError("the group rebalanced")
        self.commits.append(dict(offsets))
        self.called.set()


async def until(consumer: FakeConsumer, condition: Callable[[], object], what: str) -> None:
    """Wait (5 s at most) until ``condition`` holds, looking again at each call to ``consumer``."""
    try:
        async with asyncio.timeout(5):
            while not condition():
                consumer.called.clear()
                await consumer.called.wait()
    except TimeoutError:
        raise AssertionError(f"waiting for {what}") from None


async def test_only_the_newest_offset_of_an_assigned_partition_is_committed_and_only_once() -> None:
    consumer = FakeConsumer(P0, P1)
    offsets = GroupOffsets(consumer)
    offsets.advance(P0, 10)
    offsets.advance(P0, 25)  # coalesced with the one before
    offsets.advance(P2, 7)  # not this instance's (revoked meanwhile): its next owner commits it
    assert await offsets.commit()
    assert consumer.commits == [{P0: 25}]
    assert await offsets.commit()  # nothing new: no request at all
    offsets.advance(P1, 3)
    assert await offsets.commit()
    assert consumer.commits == [{P0: 25}, {P1: 3}]


async def test_commits_in_flight_coalesce_and_the_group_ends_at_the_newest_offset() -> None:
    consumer = FakeConsumer(P0)
    consumer.gate = asyncio.Event()
    offsets = GroupOffsets(consumer)
    stop = asyncio.Event()
    following = asyncio.create_task(offsets.run(stop))
    offsets.advance(P0, 1)
    await until(consumer, lambda: consumer.asked == 1, "the first commit in flight, held at the gate")
    for end in range(2, 50):
        offsets.advance(P0, end)
    consumer.gate.set()
    await until(consumer, lambda: consumer.commits and consumer.commits[-1] == {P0: 49}, "the newest offset")
    stop.set()
    offsets.advance(P0, 49)  # wakes the loop, which sees stop
    await asyncio.wait_for(following, 5)
    assert consumer.commits == [{P0: 1}, {P0: 49}]


async def test_a_failed_commit_is_tried_again_without_a_new_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(group_offsets, "RETRY_SECONDS", 0.01)
    consumer = FakeConsumer(P0)
    consumer.failing = 2  # a rebalance, then the broker away
    offsets = GroupOffsets(consumer)
    stop = asyncio.Event()
    following = asyncio.create_task(offsets.run(stop))
    offsets.advance(P0, 5)  # the last transaction before the stream goes quiet
    await until(consumer, lambda: consumer.commits == [{P0: 5}], "the offset committed at last")
    assert offsets.failures == 2
    following.cancel()


async def test_a_commit_the_broker_does_not_answer_is_given_up_and_not_counted_done(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(group_offsets, "COMMIT_TIMEOUT_SECONDS", 0.01)
    consumer = FakeConsumer(P0)
    consumer.gate = asyncio.Event()  # never set: the broker is gone
    offsets = GroupOffsets(consumer)
    offsets.advance(P0, 5)
    assert not await offsets.commit()
    consumer.gate.set()
    assert await offsets.commit()
    assert consumer.commits == [{P0: 5}]


async def test_a_release_commits_the_partitions_offset_then_forgets_it() -> None:
    consumer = FakeConsumer(P0, P1)
    offsets = GroupOffsets(consumer)
    offsets.advance(P0, 8)
    offsets.advance(P1, 9)
    await offsets.release(P0)
    assert consumer.commits == [{P0: 8}]
    consumer.assigned.discard(P0)
    assert P0 not in offsets.latest
    assert await offsets.commit()
    assert consumer.commits == [{P0: 8}, {P1: 9}]


async def test_a_release_survives_a_refused_commit() -> None:
    consumer = FakeConsumer(P0)
    consumer.failing = 1
    offsets = GroupOffsets(consumer)
    offsets.advance(P0, 8)
    await offsets.release(P0)  # the group rebalanced already: the next owner sets it (``rounds``)
    assert consumer.commits == []
    assert offsets.latest == {}
