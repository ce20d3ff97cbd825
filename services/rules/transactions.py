"""One transaction per partition and batch: findings, dead letters, a snapshot round when due,
the audit checkpoint when due, and the partition's progress record (the consumed offset), all
committed together or not at all. The group's offsets follow outside it (``group_offsets``).

A batch is processed first, against a view of the partition's state that keeps its writes apart
(``Overlay``); the partition's state follows only once the transaction is committed. A
transaction that fails leaves the partition's state as it was, and the service drops it anyway
(see ``service``). A batch with nothing to publish may wait for more records before it is
committed (``due``): its records' offsets then go out with the next transaction's, and until
then they are simply not consumed as far as the progress record is concerned.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaProducer, TopicPartition

from events import Topics
from protocol import ParticipantState
from services.ledger.chain_v2 import ChainV2
from services.metrics import Metrics
from services.participant_records import Record
from services.rules.chains import Checkpointer
from services.rules.partitions import OwnedPartition
from services.rules.prepared import prepare_round
from services.rules.records import Outgoing, Overlay, RecordHandler
from services.rules.rounds import progress_record, snapshot_records
from services.rules.timing import Timings
from services.rules.weather import error_fields

log = structlog.get_logger("trialguard.rules")

FOLD_SECONDS = 0.02
"""A batch with something to publish is folded at most this long while more records wait before
it is committed: long enough for a backlog to go in batches of hundreds, short for a finding."""

RELEASE_ROUND_SECONDS = 30.0
"""The snapshot round written at a graceful release that has not committed after this long is given up."""
REST_EACH_COMMIT = 200
"""Participants of committed rounds put at rest after each transaction at most (a few ms of the
event loop: ``RestoredStates.rest``)."""


@dataclass
class Batch:
    """Records of one partition processed and not yet committed: what their transaction carries."""

    changed: dict[str, ParticipantState]
    """The state of each participant the records changed (the partition's state is left as it is)."""
    records: list[Record]
    out: list[Outgoing]
    """Findings, dead letters and the audit checkpoint, in order."""
    dead: int
    rule_ids: list[str]
    outcomes: Counter[str]
    """Events of note (``RecordHandler.handle``), for the metrics once committed."""
    chain: ChainV2 | None
    """The audit chain after the records."""
    opened: float
    """When the first record was processed (the event loop's clock)."""
    started: float
    """The same, by ``time.perf_counter`` (the batch latency metric)."""


class Transactions:
    """Writes a partition's batches, each in one transaction of the partition's producer.

    Args:
        handler: processes each record.
        topics: the study's topics.
        metrics: where counts and batch latency go.
        checkpointer: signs the audit chain every N records (None: no checkpoints).
        snapshot_every: offsets of a partition between two snapshot rounds.
        timings: where the time of each phase of a transaction goes (``timing``).
    """

    def __init__(
        self,
        handler: RecordHandler,
        topics: Topics,
        metrics: Metrics,
        checkpointer: Checkpointer | None,
        snapshot_every: int,
        timings: Timings | None = None,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot every {snapshot_every} offsets: must be at least 1")
        self.handler = handler
        self.topics = topics
        self.metrics = metrics
        self.checkpointer = checkpointer
        self.snapshot_every = snapshot_every
        self.timings = timings or Timings()

    def round_every(self, part: OwnedPartition) -> int:
        """Offsets between two rounds of ``part``: ``snapshot_every`` and up to a fifth more, by
        partition, so that partitions fed at the same rate do not write their rounds together."""
        return self.snapshot_every + self.snapshot_every * (part.number % 4) // 16

    def begin(self, part: OwnedPartition, now: float) -> Batch:
        """An empty batch for ``part``, opened at ``now`` (the event loop's clock)."""
        return Batch({}, [], [], 0, [], Counter(), part.chain, now, time.perf_counter())

    def process(self, part: OwnedPartition, batch: Batch, records: list[Record]) -> None:
        """Process ``records`` (the next of the partition) into ``batch``: the partition's state
        is left as it is until the batch is committed."""
        started = time.perf_counter()
        view = Overlay(part.states, batch.changed)  # writes land in `batch.changed` only
        dead_letter = self.topics.dead_letter
        for record in records:
            outgoing = self.handler.handle(record, view, outcomes=batch.outcomes)
            if outgoing:
                if any(o.topic == dead_letter for o in outgoing):
                    batch.dead += 1
                batch.rule_ids += [o.rule_id for o in outgoing if o.rule_id is not None]
                batch.out += outgoing
        if batch.chain is not None and self.checkpointer is not None:
            batch.chain, checkpoint = self.checkpointer.extend(batch.chain, records)
            batch.out += checkpoint
        batch.records += records
        self.timings.observe("fold", time.perf_counter() - started)

    def due(self, part: OwnedPartition, batch: Batch, most: int, now: float) -> bool:
        """Whether ``batch`` is to be committed now rather than grow: it has ``most`` records or
        reaches a snapshot round; or it has something to publish (findings, dead letters, a
        checkpoint) and either no more records are waiting or it has been folding for
        ``FOLD_SECONDS`` (``now``: the event loop's clock). A finding at a steady rate commits at
        once; a backlog (a flood of dead letters) still goes in batches of many records."""
        end = batch.records[-1].offset + 1
        if len(batch.records) >= most or part.round_due(end, self.round_every(part)):
            return True
        return bool(batch.out) and (not part.pending or now >= batch.opened + FOLD_SECONDS)

    async def commit(self, tp: TopicPartition, part: OwnedPartition, batch: Batch) -> None:
        """One transaction: the batch's findings, dead letters and checkpoint, a snapshot round
        when due, and the progress record (the consumed offset). Not the group's offsets: each
        would cost the transaction two more round trips, and the progress record is what a
        take-over restores from (``group_offsets``).

        Raises:
            Exception: whatever the producer raises (fenced, commit failed, broker gone); the
                partition's state is then as before the batch.
        """
        changed = batch.changed
        end = batch.records[-1].offset + 1
        # Only the first round after a take-over that found none is written in the batch's own
        # transaction; the others are prepared off the hot path and carried by the first
        # transaction after they are encoded (``prepared``).
        snapshot_round = part.round_offset is None
        prepared = part.prepared if part.prepared is not None and part.prepared.ready else None
        producer = part.producer
        timings = self.timings
        began = time.perf_counter()
        timings.observe("wait", began - batch.started)
        async with producer.transaction():
            await _send(producer, batch.out)
            sent = time.perf_counter()
            timings.observe("send", sent - began)
            if snapshot_round:
                view = Overlay(part.states, changed)
                await self._send_records(producer, tp, snapshot_records(
                    self.topics.participant_state, view, sorted(part.changed | changed.keys()), end))  # fmt: skip
                timings.observe("round", time.perf_counter() - sent)
            elif prepared is not None:
                await self._send_records(producer, tp, prepared.task.result())
                timings.observe("round", time.perf_counter() - sent)
            committing = time.perf_counter()
            if snapshot_round:
                round_offset = end
            else:
                assert part.round_offset is not None
                round_offset = part.round_offset if prepared is None else prepared.offset
            await self._send_progress(producer, tp, end, round_offset)
        done = time.perf_counter()
        timings.observe("commit", done - committing)
        timings.observe("transaction", done - batch.started)
        # Memory follows the log only once the transaction is committed.
        part.states.update(changed)
        part.next_offset = end
        part.chain = batch.chain
        part.round_offset = round_offset
        if snapshot_round:
            part.changed.clear()
        else:
            part.changed.update(changed)
        if prepared is not None:
            part.prepared = None
            part.states.rest_later(prepared.captured, prepared.written())
        part.states.rest(REST_EACH_COMMIT)
        if part.round_due(end, self.round_every(part)):
            self._prepare(part, end)
        self.metrics.batch_committed(
            len(batch.records) - batch.dead,
            batch.dead,
            batch.rule_ids,
            time.perf_counter() - batch.started,
            batch.outcomes,
        )

    def _prepare(self, part: OwnedPartition, end: int) -> None:
        """Capture the next round at committed offset ``end`` and start encoding it."""
        if not part.changed:  # nothing changed since the last round: its snapshots hold at `end` too
            part.round_offset = end
            return
        part.prepared = prepare_round(self.topics.participant_state, part.states, part.changed, end)
        part.changed = set()

    async def _send_records(self, producer: AIOKafkaProducer, tp: TopicPartition, records: Iterable[Outgoing]) -> None:
        """Snapshot records to the state partition of input partition ``tp``, in as few produce
        batches as fit."""
        topic = self.topics.participant_state
        batch = producer.create_batch()
        for o in records:
            if batch.append(key=o.key, value=o.value, timestamp=None, headers=list(o.headers)) is not None:
                continue
            if batch.record_count():  # full: send it, go on in a new one
                await producer.send_batch(batch, topic, partition=tp.partition)
                batch = producer.create_batch()
                if batch.append(key=o.key, value=o.value, timestamp=None, headers=list(o.headers)) is not None:
                    continue
            # Larger than a batch: the producer's own limit (max_request_size) says whether it can go.
            await producer.send(topic, key=o.key, value=o.value, headers=list(o.headers), partition=tp.partition)
        if batch.record_count():
            await producer.send_batch(batch, topic, partition=tp.partition)

    async def _send_progress(self, producer: AIOKafkaProducer, tp: TopicPartition, end: int, round_offset: int) -> None:
        """The progress record: input offset ``end`` committed, in the state partition of ``tp``,
        where it outlives the group's offsets (``rounds``)."""
        o = progress_record(self.topics.participant_state, end, round_offset)
        await producer.send(o.topic, key=o.key, value=o.value, headers=list(o.headers), partition=tp.partition)

    async def last_round(self, tp: TopicPartition, part: OwnedPartition) -> bool:
        """At a graceful release: a round of the participants changed since the last one, at the
        committed offset, so that the next owner has no records to process again. Correctness
        does not need it (the next owner processes the tail again), so a failure is only logged;
        False then (the transaction is to be aborted)."""
        # A prepared round not yet written: its participants go in this one, as they are now.
        pids = part.changed | (part.prepared.pids if part.prepared is not None else set())
        if part.prepared is not None:
            part.prepared.cancel()
            part.prepared = None
        if not pids:
            return True
        try:
            async with asyncio.timeout(RELEASE_ROUND_SECONDS):
                async with part.producer.transaction():
                    records = snapshot_records(self.topics.participant_state, part.states, sorted(pids),
                                               part.next_offset)  # fmt: skip
                    await self._send_records(part.producer, tp, records)
                    await self._send_progress(part.producer, tp, part.next_offset, part.next_offset)
        except Exception as e:
            log.warning("snapshot_round_failed", partition=tp.partition, **error_fields(e))
            return False
        part.changed.clear()
        part.round_offset = part.next_offset
        return True


async def _send(producer: AIOKafkaProducer, outgoing: Iterable[Outgoing]) -> None:
    for o in outgoing:
        await producer.send(o.topic, key=o.key, value=o.value, headers=list(o.headers))
