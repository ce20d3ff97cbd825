"""The rules service: consume participant events, fold and decide, publish findings. Exactly once.

Imperative shell around the pure core (``events.process``). Each assigned input partition has its
own transactional producer, with a transactional id stable per partition
(``<group>.p<partition>``): whoever owns the partition next (a restarted process, another
instance after a rebalance) opens the same id and so fences its predecessor and aborts what it
left open. Per batch of one partition, one transaction carries:
  - the findings (DeviationRaised, SafetyAlertRaised) to the deviations topic,
  - the dead-lettered input, with the reason and its topic/partition/offset,
  - a snapshot of every participant the batch changed, to the compacted participant-state topic
    (same partition number as the input partition),
  - the consumed offsets.
So a finding, a snapshot and an offset are published together or not at all. On assignment the
service restores the partition's participants from its snapshots and resumes at the committed
offset, without re-reading history.
"""

from __future__ import annotations

import asyncio
import os
import time
import typing
from collections import ChainMap
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from contracts import ContractError, ParticipantEvent, Violation, encode, parse_event
from events import process, snapshots
from protocol import ParticipantState, Protocol
from services.kafka import KafkaSettings, ensure_topics, read_partition
from services.metrics import Metrics

log = structlog.get_logger("trialguard.rules")


class Record(typing.Protocol):
    """The fields of a consumed Kafka record that the service reads."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...


States = MutableMapping[str, ParticipantState]


@dataclass(frozen=True)
class Outgoing:
    """A record to produce inside the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    rule_id: str | None = None


def rules_group_id(settings: KafkaSettings) -> str:
    """The consumer group of a study's rules service."""
    return f"{settings.namespace}.{settings.study_id}.rules"


def check_message(record: Record, event: ParticipantEvent, study_id: str) -> None:
    """Guard the topic's own contract: key = participant id, one study per topic.

    Raises:
        ContractError: the key is absent or differs from the participant id, or the event
            belongs to another study.
    """
    violations = []
    if record.key is None:
        violations.append(Violation("<key>", "missing: the message key must be the participant_id", "key_missing"))
    elif record.key != event.participant_id.encode():
        violations.append(
            Violation("<key>", f"{record.key!r} differs from participant_id {event.participant_id!r}", "key_mismatch")
        )
    if event.study_id != study_id:
        violations.append(
            Violation(
                "study_id", f"{event.study_id!r} does not belong on the topic of study {study_id!r}", "study_mismatch"
            )
        )
    if violations:
        raise ContractError(violations, event_type=event.event_type, event_id=str(event.event_id))


def dead_letter(record: Record, reason: str, field: str, topic: str) -> Outgoing:
    """The dead-letter record for rejected input: the original key and bytes, the reason and
    where it came from in headers."""
    return Outgoing(
        topic,
        record.key,
        record.value,
        (
            ("trialguard.error", reason.encode()),
            ("trialguard.error.field", field.encode()),
            ("trialguard.source.topic", record.topic.encode()),
            ("trialguard.source.partition", str(record.partition).encode()),
            ("trialguard.source.offset", str(record.offset).encode()),
        ),
    )


class RulesService:
    """Runs one protocol over one study's participant-events topic.

    Args:
        settings: broker and study.
        protocol: the protocol version in force.
        max_batch: records per transaction at most.
        metrics: where counts, lag and latency go (a fresh set by default).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        protocol: Protocol,
        *,
        max_batch: int = 500,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.protocol = protocol
        self.topics = settings.topics
        self.group_id = rules_group_id(settings)
        self.max_batch = max_batch
        self.metrics = metrics or Metrics()
        self.partitions: dict[TopicPartition, _Partition] = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.joined = False  # the group has assigned this instance its partitions (maybe none) once

    def transactional_id(self, tp: TopicPartition) -> str:
        """Stable per input partition: the next owner of the partition fences the previous one."""
        return f"{self.group_id}.p{tp.partition}"

    # --- the pure-ish part: one record in, records out --------------------------------------

    def handle(self, record: Record, states: States, *, replaying: bool = False) -> list[Outgoing]:
        """Process one consumed record against ``states`` (updated in place).

        ``replaying`` rebuilds state from records consumed before: it logs nothing, since what it
        returns was published then.
        """
        try:
            event = parse_event(record.value or b"")
            check_message(record, event, self.settings.study_id)
        except ContractError as e:
            if not replaying:
                log.warning(
                    "dead_lettered",
                    partition=record.partition,
                    offset=record.offset,
                    event_type=e.event_type,
                    violations=e.summary(),
                )
            return [dead_letter(record, str(e), e.field, self.topics.dead_letter)]
        pid = event.participant_id
        try:
            step = process(states.get(pid) or ParticipantState(pid), event, self.protocol)
        except Exception as e:  # the core raising on valid input is a bug: keep the input, go on
            if not replaying:
                log.exception("core_failed", event_id=str(event.event_id), event_type=event.event_type)
            return [dead_letter(record, f"protocol core raised {type(e).__name__}", "<core>", self.topics.dead_letter)]
        states[pid] = step.state
        if not replaying:
            for finding in step.findings:
                log.info(
                    "finding_raised",
                    rule_id=finding.rule_id,
                    participant_id=pid,
                    trigger_event_ids=[str(i) for i in finding.trigger_event_ids],
                )
        return [Outgoing(self.topics.deviations, pid.encode(), encode(f), rule_id=f.rule_id) for f in step.findings]

    # --- the shell ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, one transaction per partition and batch."""
        await ensure_topics(self.settings)
        consumer = self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
            # How long a dead instance holds its partitions before the group moves them on.
            session_timeout_ms=int(os.environ.get("TRIALGUARD_SESSION_TIMEOUT_MS", "10000")),
            heartbeat_interval_ms=1000,
            fetch_max_wait_ms=50,  # at a trickle, a finding should not wait half a second for its event
        )
        await consumer.start()
        consumer.subscribe([self.topics.participant_events], listener=_Rebalance(self))
        log.info("started", topic=self.topics.participant_events, group_id=self.group_id,
                 protocol_version=self.protocol.version)  # fmt: skip
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                if batch:
                    await asyncio.gather(*(self._commit(tp, records) for tp, records in batch.items()))
                self.metrics.lag = {tp.partition: await _lag(consumer, tp) for tp in consumer.assignment()}
        finally:
            await consumer.stop()
            await self._close(list(self.partitions))
            log.info("stopped", **self.metrics.counts())

    async def _commit(self, tp: TopicPartition, records: list[Record]) -> None:
        """One transaction: findings, dead letters, snapshots of changed participants, offsets."""
        part = self.partitions.get(tp)
        if part is None:
            return  # revoked while the batch was fetched; its next owner reads it again
        started = time.perf_counter()
        changed: dict[str, ParticipantState] = {}
        view: States = ChainMap(changed, part.states)  # writes land in `changed` only
        dead = 0
        rule_ids: list[str] = []
        async with part.producer.transaction():
            for record in records:
                outgoing = self.handle(record, view)
                if any(o.topic == self.topics.dead_letter for o in outgoing):
                    dead += 1
                rule_ids += [o.rule_id for o in outgoing if o.rule_id is not None]
                await self._send(part.producer, outgoing)
            for pid, state in changed.items():
                await part.producer.send(self.topics.participant_state, key=pid.encode(), value=snapshots.encode(state),
                                         partition=tp.partition)  # fmt: skip
            await part.producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, self.group_id)
        # Memory follows the log only once the transaction is committed.
        part.states.update(changed)
        self.metrics.batch_committed(len(records) - dead, dead, rule_ids, time.perf_counter() - started)

    @staticmethod
    async def _send(producer: AIOKafkaProducer, outgoing: Iterable[Outgoing]) -> None:
        for o in outgoing:
            await producer.send(o.topic, key=o.key, value=o.value, headers=list(o.headers))

    # --- ownership of partitions ----------------------------------------------------------------

    async def _open(self, tp: TopicPartition) -> None:
        """Take over a partition: fence the predecessor, then restore state from snapshots."""
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            transactional_id=self.transactional_id(tp),
            enable_idempotence=True,
            linger_ms=5,
        )
        # Starting initialises the transactional id: the broker aborts whatever the predecessor
        # left open, so the snapshots read next are exactly those of committed batches.
        await producer.start()
        started = time.perf_counter()
        states, read = await restore_snapshots(self.settings, tp.partition)
        committed = await self.consumer.committed(tp) if self.consumer is not None else None
        if read == 0 and committed:
            # Offsets were committed but no snapshot exists (the state topic was deleted, or it
            # predates snapshots): the log is the source of truth, rebuild from it.
            log.warning("snapshots_missing", partition=tp.partition, committed_offset=committed)
            states, read = await rebuild_from_log(self, tp.partition, committed)
        self.partitions[tp] = _Partition(producer, dict(states))
        self.metrics.restored(read, time.perf_counter() - started)
        log.info("partition_restored", partition=tp.partition, participants=len(states), records_read=read)

    async def _close(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            part = self.partitions.pop(tp, None)
            if part is not None:
                await part.producer.stop()

    @property
    def ready(self) -> bool:
        """Whether the group has assigned this instance its partitions and every one is restored
        (an instance left without partitions, with more instances than partitions, is ready too)."""
        consumer = self.consumer
        return consumer is not None and self.joined and all(tp in self.partitions for tp in consumer.assignment())


@dataclass
class _Partition:
    """What the service holds for one assigned input partition."""

    producer: AIOKafkaProducer
    states: dict[str, ParticipantState] = field(default_factory=dict)


async def _lag(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    """Records between the consumer's position and the partition's end (as last fetched)."""
    end: int | None = consumer.last_stable_offset(tp)
    if end is None or tp in consumer.paused():
        return 0
    try:
        position: int = await consumer.position(tp)
    except Exception:  # no position yet: the partition is being restored
        return 0
    return max(0, end - position)


async def restore_snapshots(settings: KafkaSettings, partition: int) -> tuple[dict[str, ParticipantState], int]:
    """The latest committed snapshot of every participant of one partition, and how many
    snapshot records were read to find them.

    Until the broker compacts the topic, it holds every snapshot ever written: only the last of
    each participant is decoded.
    """
    latest: dict[bytes, bytes | None] = {}
    read = 0
    async for record in read_partition(settings.bootstrap_servers, settings.topics.participant_state, partition):
        read += 1
        if record.key is not None:
            latest[record.key] = record.value
    states = {key.decode(): snapshots.decode(value) for key, value in latest.items() if value is not None}
    return states, read


async def rebuild_from_log(service: RulesService, partition: int, upto: int) -> tuple[dict[str, ParticipantState], int]:
    """The state of one partition's participants rebuilt by re-reading participant-events from
    offset 0 up to ``upto`` with the same step (what snapshots save), and the events read."""
    states: dict[str, ParticipantState] = {}
    read = 0
    async for record in read_partition(
        service.settings.bootstrap_servers, service.topics.participant_events, partition
    ):
        if record.offset >= upto:
            break
        read += 1
        service.handle(record, states, replaying=True)
    return states, read


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: RulesService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.service._close(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        consumer = self.service.consumer
        assert consumer is not None
        # The fetcher may already fetch for new partitions: hold them until their state is back.
        consumer.pause(*assigned)
        for tp in sorted(assigned):
            await self.service._open(tp)
        consumer.resume(*assigned)
        self.service.joined = True
