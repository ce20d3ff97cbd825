"""The consumer group's committed offsets, following the partitions' transactions.

What a take-over restores from is each partition's progress record, written in every
transaction (``rounds``): the group's offsets are not what exactly-once rests on. They are
still what operators and tools read (consumer lag, ``kafka-consumer-groups``, the tests'
waits), so they are kept close behind: after a partition's transaction commits, its offset is
committed to the group by a plain offset commit, outside the transaction. Putting it in the
transaction (``send_offsets_to_transaction``) would cost every transaction two more round trips
to the coordinators (AddOffsetsToTxn, TxnOffsetCommit) before its commit, and a finding waits
for them.

Commits are coalesced: one in flight at a time, carrying the newest offset of each partition. A
group offset may lag its progress record by one commit, or more while the broker is away; it is
never ahead of it (it is committed only once the transaction is). A failed commit (a rebalance,
the broker gone) is tried again with the next offset, or after ``RETRY_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.rules.weather import error_fields

log = structlog.get_logger("trialguard.rules")

COMMIT_TIMEOUT_SECONDS = 10.0
"""A group offset commit not answered after this long is given up (tried again later)."""

RETRY_SECONDS = 1.0
"""After a failed commit, how long before the offsets are committed again without a new one."""


class GroupOffsets:
    """Commits the offsets of committed transactions to the consumer group, in the background.

    Args:
        consumer: the rules service's consumer (its group and assignment).
    """

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.latest: dict[TopicPartition, int] = {}
        """The newest committed offset of each partition this instance owns."""
        self.committed: dict[TopicPartition, int] = {}
        """What the group was last told, by this instance."""
        self.failures = 0
        self._due = asyncio.Event()

    def advance(self, tp: TopicPartition, offset: int) -> None:
        """``tp``'s transaction up to ``offset`` has committed: its group offset is to follow."""
        self.latest[tp] = offset
        self._due.set()

    def forget(self, tp: TopicPartition) -> None:
        """``tp`` is no longer this instance's: its next owner commits its offsets."""
        self.latest.pop(tp, None)
        self.committed.pop(tp, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Commit what is due until ``stop`` is set (a task of the service's loop)."""
        while not stop.is_set():
            await self._due.wait()
            self._due.clear()
            if not await self.commit():
                await asyncio.sleep(RETRY_SECONDS)
                self._due.set()

    async def commit(self, only: set[TopicPartition] | None = None) -> bool:
        """Commit the offsets not yet committed (of ``only``, if given) now. False if that failed."""
        assigned = self.consumer.assignment()
        offsets = {
            tp: offset
            for tp, offset in self.latest.items()
            if tp in assigned and self.committed.get(tp) != offset and (only is None or tp in only)
        }
        if not offsets:
            return True
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT_SECONDS):
                await self.consumer.commit(offsets)
        except Exception as e:  # a rebalance, the broker gone, a partition revoked meanwhile
            self.failures += 1
            log.debug("group_offsets_not_committed", partitions=sorted(tp.partition for tp in offsets),
                      **error_fields(e))  # fmt: skip
            return False
        self.committed.update(offsets)
        return True

    async def release(self, tp: TopicPartition) -> None:
        """At a graceful release of ``tp``: commit its offset now (while it is still assigned),
        then forget it."""
        with contextlib.suppress(Exception):
            await self.commit({tp})
        self.forget(tp)
