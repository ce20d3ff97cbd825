"""Ownership of the rules service's input partitions: take-over, release and re-opening.

``PartitionOwnership`` is mixed into ``RulesService`` (``services.rules.service``): it opens an
assigned partition (``take_over``: restore its state, open its transactional producer, start its
worker), releases a revoked one once its transaction has ended, drops one whose transaction
failed, and re-opens the assigned partitions that are not open, with capped backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.kafka import KafkaSettings
from services.metrics import Metrics
from services.rules.chains import Checkpointer
from services.rules.group_offsets import GroupOffsets
from services.rules.partitions import OwnedPartition, stop_producer, take_over
from services.rules.records import RecordHandler
from services.rules.transactions import Transactions
from services.rules.weather import Backoff, error_fields

log = structlog.get_logger("trialguard.rules")


@dataclass
class _Reopen:
    """An assigned partition that is not open (its take-over or a transaction failed)."""

    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.2, cap=10.0))
    at: float = 0.0


class PartitionOwnership:
    """Takes over, releases and re-opens partitions for ``RulesService`` (the attributes below
    are set by its ``__init__``; ``_work`` is its partition worker)."""

    settings: KafkaSettings
    group_id: str
    consumer: AIOKafkaConsumer | None
    group_offsets: GroupOffsets | None
    handler: RecordHandler
    checkpointer: Checkpointer | None
    transactions: Transactions
    metrics: Metrics
    partitions: dict[TopicPartition, OwnedPartition]
    reopening: dict[TopicPartition, _Reopen]
    joined: bool
    freeze_restored: bool
    _ownership: asyncio.Lock
    _workers: set[asyncio.Task[None]]

    def transactional_id(self, tp: TopicPartition) -> str:
        """Stable per input partition: the next owner of the partition fences the previous one."""
        return f"{self.group_id}.p{tp.partition}"

    async def _work(self, tp: TopicPartition, part: OwnedPartition) -> None:
        """The partition's worker (``RulesService._work``)."""
        raise NotImplementedError

    async def _open(self, tp: TopicPartition) -> bool:
        """Take over a partition (``take_over``) and start its worker. False (and nothing held)
        when it could not."""
        assert self.consumer is not None
        started = time.perf_counter()
        try:
            part, restored, read = await take_over(
                self.settings, self.consumer, self.handler, self.checkpointer, tp, self.transactional_id(tp),
                self.group_id,
            )  # fmt: skip
        except Exception as e:
            log.warning("partition_open_failed", partition=tp.partition, **error_fields(e))
            return False
        self.partitions[tp] = part
        worker = asyncio.create_task(self._work(tp, part))
        self._workers.add(worker)
        worker.add_done_callback(self._workers.discard)
        if self.freeze_restored:
            self.transactions.timings.collect_and_freeze()
        self.metrics.restored(read, time.perf_counter() - started)
        log.info("partition_restored", partition=tp.partition, participants=len(part.states), records_read=read,
                 snapshots_read=restored.snapshots_read, tail_records=restored.events_read,
                 round_offset=restored.round_offset, committed_offset=part.next_offset)  # fmt: skip
        return True

    async def _assign(self, assigned: Iterable[TopicPartition]) -> None:
        consumer = self.consumer
        assert consumer is not None
        # The fetcher may already fetch for new partitions: hold them until their state is back.
        consumer.pause(*assigned)
        for tp in sorted(assigned):
            async with self._ownership:
                if tp not in self.partitions and await self._open(tp):
                    consumer.resume(tp)
                elif tp not in self.partitions:
                    self._schedule_reopen(tp)
        self.joined = True

    async def _release(self, revoked: Iterable[TopicPartition]) -> None:
        """Give partitions up: each one's transaction ends first, then its producer closes and
        its offset goes to the group."""
        for tp in revoked:
            async with self._ownership:
                self.reopening.pop(tp, None)
                part = self.partitions.get(tp)
                if part is not None:
                    part.closing = True
                    async with part.lock:  # the in-flight transaction, if any, commits or aborts
                        # Unless a failed transaction dropped it meanwhile, its state is that of next_offset.
                        done = self.partitions.get(tp) is not part or await self.transactions.last_round(tp, part)
                        await self._drop(tp, part, abort=not done)
                if self.group_offsets is not None:
                    await self.group_offsets.release(tp)

    async def _drop(self, tp: TopicPartition, part: OwnedPartition, *, abort: bool) -> None:
        """Forget a partition's state and close its producer (aborting what it left open)."""
        part.closing = True
        part.pending.clear()
        if part.prepared is not None:
            part.prepared.cancel()
        part.wake.set()  # its worker ends
        if self.partitions.get(tp) is part:
            del self.partitions[tp]
        if abort:
            with contextlib.suppress(Exception):  # not in a transaction, or fenced: nothing to abort
                async with asyncio.timeout(10):
                    await part.producer.abort_transaction()
        await stop_producer(part.producer)

    def _schedule_reopen(self, tp: TopicPartition) -> None:
        consumer = self.consumer
        if consumer is not None and tp in consumer.assignment():
            consumer.pause(tp)
        due = self.reopening.setdefault(tp, _Reopen())
        due.at = asyncio.get_running_loop().time() + due.backoff.next_delay()

    async def _reopen_due(self, consumer: AIOKafkaConsumer) -> None:
        """Re-open the assigned partitions whose take-over failed, when their backoff is due."""
        now = asyncio.get_running_loop().time()
        for tp in [tp for tp, due in self.reopening.items() if due.at <= now]:
            async with self._ownership:
                if tp not in self.reopening:
                    continue  # revoked meanwhile
                if tp not in consumer.assignment() or tp in self.partitions:
                    del self.reopening[tp]
                elif await self._open(tp):
                    del self.reopening[tp]
                    self.metrics.partitions_reopened += 1
                    consumer.resume(tp)
                else:
                    self._schedule_reopen(tp)
