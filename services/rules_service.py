"""The rules service: consume participant events, fold and decide, publish findings.

Imperative shell around the pure core (``events.process``). Per batch of consumed records one
Kafka transaction carries the findings, the dead-lettered input and the consumed offsets, so a
finding is published exactly when its input counts as consumed. Participant state lives in
memory per input partition; on assignment it is rebuilt by re-reading that partition up to the
committed offset with the same pure step, discarding the findings it already published.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from contracts import ContractError, ParticipantEvent, Violation, encode, parse_event
from events import process
from protocol import ParticipantState, Protocol
from services.kafka import KafkaSettings, ensure_topics

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


States = dict[str, ParticipantState]


@dataclass(frozen=True)
class Outgoing:
    """A record to produce inside the batch's transaction."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


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
        transactional_id: fences a predecessor with the same id; default is stable per study.
        max_batch: records per transaction at most.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        protocol: Protocol,
        *,
        transactional_id: str | None = None,
        max_batch: int = 500,
    ) -> None:
        self.settings = settings
        self.protocol = protocol
        self.topics = settings.topics
        self.group_id = rules_group_id(settings)
        self.transactional_id = transactional_id or f"{self.group_id}.0"
        self.max_batch = max_batch
        self.states: dict[TopicPartition, States] = {}
        self.counts = {"consumed": 0, "processed": 0, "dead_lettered": 0, "findings": 0}

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
        return [Outgoing(self.topics.deviations, pid.encode(), encode(f)) for f in step.findings]

    # --- the shell ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, one transaction per batch."""
        await ensure_topics(self.settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.bootstrap_servers,
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            linger_ms=5,
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=self.group_id,
            enable_auto_commit=False,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            max_poll_records=self.max_batch,
        )
        await producer.start()
        await consumer.start()
        consumer.subscribe([self.topics.participant_events], listener=_Restore(self, consumer))
        log.info(
            "started",
            topic=self.topics.participant_events,
            group_id=self.group_id,
            transactional_id=self.transactional_id,
            protocol_version=self.protocol.version,
        )
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=200, max_records=self.max_batch)
                if batch:
                    await self._commit_batch(producer, batch)
        finally:
            await consumer.stop()
            await producer.stop()
            log.info("stopped", **self.counts)

    async def _commit_batch(self, producer: AIOKafkaProducer, batch: dict[TopicPartition, list[Record]]) -> None:
        # New states become visible only once the transaction commits: an aborted batch leaves
        # memory as the committed log says.
        pending: dict[TopicPartition, States] = {}
        counts = dict.fromkeys(self.counts, 0)
        async with producer.transaction():
            for tp, records in batch.items():
                states = pending[tp] = dict(self.states.get(tp, {}))
                for record in records:
                    outgoing = self.handle(record, states)
                    counts["consumed"] += 1
                    rejected = any(o.topic == self.topics.dead_letter for o in outgoing)
                    counts["dead_lettered" if rejected else "processed"] += 1
                    counts["findings"] += 0 if rejected else len(outgoing)
                    await self._send(producer, outgoing)
            offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
            await producer.send_offsets_to_transaction(offsets, self.group_id)
        self.states.update(pending)
        for k, v in counts.items():
            self.counts[k] += v
        log.debug("batch_committed", records=counts["consumed"], findings=counts["findings"])

    @staticmethod
    async def _send(producer: AIOKafkaProducer, outgoing: Iterable[Outgoing]) -> None:
        for o in outgoing:
            await producer.send(o.topic, key=o.key, value=o.value, headers=list(o.headers))

    async def restore(self, consumer: AIOKafkaConsumer, tps: Iterable[TopicPartition]) -> None:
        """Rebuild the state of newly assigned partitions from the log, up to the committed offset."""
        for tp in tps:
            committed = await consumer.committed(tp) or 0
            states: States = {}
            reader = AIOKafkaConsumer(
                bootstrap_servers=self.settings.bootstrap_servers,
                isolation_level="read_committed",
                enable_auto_commit=False,
            )
            await reader.start()
            try:
                reader.assign([tp])
                await reader.seek_to_beginning(tp)
                while committed and await reader.position(tp) < committed:
                    for record in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                        if record.offset < committed:
                            self.handle(record, states, replaying=True)
            finally:
                await reader.stop()
            self.states[tp] = states
            log.info("partition_restored", partition=tp.partition, committed_offset=committed, participants=len(states))


class _Restore(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: RulesService, consumer: AIOKafkaConsumer) -> None:
        self.service = service
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        for tp in revoked:
            self.service.states.pop(tp, None)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        # The fetcher may already fetch for new partitions: hold them until their state is back.
        self.consumer.pause(*assigned)
        await self.service.restore(self.consumer, sorted(assigned))
        self.consumer.resume(*assigned)
