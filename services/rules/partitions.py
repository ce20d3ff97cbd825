"""What one instance holds for an input partition it owns, and how it takes one over.

State is derived: snapshot rounds on the compacted participant-state topic plus the records
after the last round restore it quickly (``rounds``), and the participant-events log itself
rebuilds it when snapshots are missing or unreadable.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from services.kafka import KafkaSettings
from services.ledger.chain_v2 import ChainV2
from services.participant_records import Record
from services.rules.chains import Checkpointer, restore_chain
from services.rules.prepared import PreparedRound
from services.rules.records import RecordHandler
from services.rules.restored import RestoredStates
from services.rules.rounds import Restored, restore

OPEN_SECONDS = 300.0
"""Taking over a partition (fencing, restore, seek) that takes longer than this is retried."""

PRODUCE_BATCH_BYTES = 512 * 1024
"""Bytes of one partition in one produce request at most (under the broker's default
``message.max.bytes`` of 1 MiB)."""


@dataclass
class OwnedPartition:
    """An assigned input partition: its transactional producer, its participants' state, and
    the next offset to commit.

    The consumer loop adds fetched records to ``pending`` and sets ``wake``; the partition's own
    worker task takes them a batch at a time, each in one transaction, so that a partition never
    waits for another's transaction. ``lock`` is held by the partition's transaction from begin
    to commit or abort, so that a revocation waits for it before closing the producer.
    ``closing`` stops new transactions (and the worker). Records below ``next_offset`` were
    committed already (fetched again after a re-open) and are skipped.
    """

    number: int
    """The partition's number."""
    producer: AIOKafkaProducer
    states: RestoredStates = field(default_factory=RestoredStates)
    """By participant id: decoded when worked on, else at rest on local disk (``RestoredStates``)."""
    next_offset: int = 0
    chain: ChainV2 | None = None
    """The audit hash chain as of ``next_offset`` (None when no checkpoints are written)."""
    changed: set[str] = field(default_factory=set)
    """Participants changed since the last committed snapshot round: the next round writes them."""
    round_offset: int | None = None
    """The input offset of the last committed snapshot round (None: the next batch writes one)."""
    prepared: PreparedRound | None = None
    """The next round, captured and being encoded off the hot path (``prepared``); its
    participants are not in ``changed`` (which holds those changed after it)."""
    pending: list[Record] = field(default_factory=list)
    """Records fetched and not yet in a transaction, in offset order."""
    fetched: int = -1
    """The offset after the last record added to ``pending`` (-1: none yet)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False

    def add(self, records: list[Record]) -> None:
        """Records fetched for this partition, for its worker (any already added or committed skipped)."""
        start = max(self.next_offset, self.fetched)
        fresh = records if records[0].offset >= start else [r for r in records if r.offset >= start]
        if fresh:
            self.pending += fresh
            self.fetched = fresh[-1].offset + 1
            self.wake.set()

    def take(self, most: int) -> list[Record]:
        """The next batch for a transaction: at most ``most`` of the pending records."""
        batch = self.pending[:most]
        del self.pending[:most]
        return batch

    def round_due(self, end: int, every: int) -> bool:
        """Whether the batch that commits offset ``end`` writes a snapshot round (the first one
        after a take-over that found none: in its own transaction) or prepares the next one."""
        if self.round_offset is None:
            return True
        return self.prepared is None and end - self.round_offset >= every


async def take_over(
    settings: KafkaSettings,
    consumer: AIOKafkaConsumer,
    handler: RecordHandler,
    checkpointer: Checkpointer | None,
    tp: TopicPartition,
    transactional_id: str,
    group_id: str,
) -> tuple[OwnedPartition, Restored, int]:
    """Take over a partition: a producer with the partition's transactional id (which fences the
    predecessor), the state restored as of the committed offset (the partition's progress
    record, else the group's: ``rounds.restore``), and the consumer's position there. A group
    offset that is missing or differs is set to it (``group_id``'s) in a transaction of its own.
    Also how it was restored and the records read to do it.

    Raises:
        Exception: whatever failed (the producer is stopped then); TimeoutError after ``OPEN_SECONDS``.
    """
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        transactional_id=transactional_id,
        enable_idempotence=True,
        linger_ms=0,  # a transaction sends all it has at once, then waits for its commit
        # aiokafka queues one batch per partition and has one request in flight per broker: a
        # snapshot round of a few MB would go out in 16 KB round trips one after another.
        max_batch_size=PRODUCE_BATCH_BYTES,
    )
    try:
        async with asyncio.timeout(OPEN_SECONDS):
            # Starting initialises the transactional id: the broker aborts whatever the
            # predecessor left open, so what is read next is exactly what was committed.
            await producer.start()
            # The progress record on the state topic, not the group's offset (it may have expired).
            group = await consumer.committed(tp)
            restored = await restore(settings, handler, tp.partition, group)
            committed = restored.committed
            if committed is not None and committed != group:
                # The group's offset again, so that its lag (and the tools that read it) say true.
                async with producer.transaction():
                    await producer.send_offsets_to_transaction({tp: committed}, group_id)
            read = restored.snapshots_read + restored.events_read
            chain = None
            if checkpointer is not None:
                chain, chained = await restore_chain(settings, checkpointer, tp.partition, committed)
                read += chained
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
    except BaseException:
        await stop_producer(producer)
        raise
    part = OwnedPartition(
        tp.partition,
        producer,
        restored.states,
        next_offset=committed or 0,
        chain=chain,
        changed=restored.changed,
        round_offset=restored.round_offset,
    )
    return part, restored, read


async def stop_producer(producer: AIOKafkaProducer) -> None:
    """Stop a producer, whatever state it or the broker is in (10 s at most)."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(10):
            await producer.stop()


async def fetch_lag(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """Records between the consumer's position and the partition's end (as last fetched)."""
    end: int | None = consumer.last_stable_offset(tp)
    if end is None or tp in consumer.paused():
        return 0
    try:
        position: int = await consumer.position(tp)
    except Exception:  # no position yet: the partition is being restored
        return 0
    return max(0, end - position)
