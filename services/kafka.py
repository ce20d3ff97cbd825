"""Kafka plumbing shared by the shell: settings, topic creation, reading a topic to its end."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from faststream.security import BaseSecurity

from events import Topics
from services import kafka_retries
from services.defaults import DEFAULT_BOOTSTRAP, DEFAULT_STUDY
from services.kafka_security import KafkaSecurity, add_security_args, security_from_args

kafka_retries.install()  # every transactional producer of the process retries quickly after a commit


@dataclass(frozen=True)
class KafkaSettings:
    """Where the broker is and which study's topics to use.

    Defaults come from TRIALGUARD_BOOTSTRAP_SERVERS, TRIALGUARD_STUDY_ID and
    TRIALGUARD_TOPIC_NAMESPACE, then from the constants above; ``security`` from the
    ``TRIALGUARD_KAFKA_*`` variables (see :mod:`services.kafka_security`), PLAINTEXT when unset.
    Every Kafka client is built from :meth:`client_kwargs` or :meth:`faststream_security`.
    """

    bootstrap_servers: str = field(
        default_factory=lambda: os.environ.get("TRIALGUARD_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)
    )
    study_id: str = field(default_factory=lambda: os.environ.get("TRIALGUARD_STUDY_ID", DEFAULT_STUDY))
    namespace: str = field(default_factory=lambda: os.environ.get("TRIALGUARD_TOPIC_NAMESPACE", "trialguard"))
    shadow: str | None = None
    """A candidate protocol version run in shadow: its outputs and group are its own (see Topics)."""
    security: KafkaSecurity = field(default_factory=KafkaSecurity.from_env)
    """How the clients authenticate (SASL/SCRAM) and encrypt (TLS); PLAINTEXT by default."""

    @property
    def topics(self) -> Topics:
        return Topics(self.study_id, self.namespace, self.shadow)

    def client_kwargs(self) -> dict[str, Any]:
        """``bootstrap_servers`` and the security keyword arguments of an aiokafka client."""
        return {"bootstrap_servers": self.bootstrap_servers, **self.security.aiokafka_kwargs()}

    def faststream_security(self) -> BaseSecurity | None:
        """The ``security=`` of a FastStream ``KafkaBroker`` on these settings."""
        return self.security.faststream_security()


def add_kafka_args(parser: argparse.ArgumentParser, *, studies: str | None = None) -> None:
    """Add ``--bootstrap-servers``, ``--study``, ``--namespace`` (defaults from :class:`KafkaSettings`)
    and the ``--kafka-*`` security options (:func:`~services.kafka_security.add_security_args`).

    Args:
        parser: the command's parser.
        studies: for a command that serves several studies: ``--study`` is repeatable
            (``args.study`` a list, None when not given) and this text says what none means.
    """
    defaults = KafkaSettings(security=KafkaSecurity())  # the variables are read by settings_from_args
    parser.add_argument(
        "--bootstrap-servers",
        default=defaults.bootstrap_servers,
        help="Kafka bootstrap servers (env TRIALGUARD_BOOTSTRAP_SERVERS; default %(default)s)",
    )
    if studies is None:
        parser.add_argument(
            "--study",
            default=defaults.study_id,
            help="study id, the middle part of topic names (env TRIALGUARD_STUDY_ID; default %(default)s)",
        )
    else:
        parser.add_argument(
            "--study",
            action="append",
            default=None,
            metavar="STUDY",
            help=f"a study id, the middle part of topic names; repeat for more ({studies})",
        )
    parser.add_argument(
        "--namespace",
        default=defaults.namespace,
        help="first part of topic names (env TRIALGUARD_TOPIC_NAMESPACE; default %(default)s)",
    )
    add_security_args(parser)


def settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    """The settings given by the options of :func:`add_kafka_args`.

    Raises:
        KafkaSecurityError: security options that cannot work (the message names them).
    """
    return KafkaSettings(args.bootstrap_servers, args.study, args.namespace, security=security_from_args(args))


INPUT_PARTITIONS = 4
"""participant-events is partitioned by participant for scale-out: at most this many rules
service instances share the work. participant-state has as many partitions (partition n holds
the snapshots of input partition n); deviations follows the same key; dead-letter needs one."""


COMPACTED = {
    "cleanup.policy": "compact",
    # Every batch writes a snapshot per participant it touched: roll and clean segments often so
    # a restore reads about one snapshot per participant, not the whole history of snapshots.
    "segment.bytes": str(16 * 1024 * 1024),
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
}


BROKER_TIME = {"message.timestamp.type": "LogAppendTime"}
"""participant-events records carry the broker's append time, not the producer's clock: the audit's
``--as-of`` reads it as "when TrialGuard could have known". Set on new topics only (see README, Audit)."""


async def partition_ids(settings: KafkaSettings, topic: str) -> list[int]:
    """The partition numbers of ``topic`` (empty when it does not exist)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(p["partition"] for p in described["partitions"])


async def cluster_id(settings: KafkaSettings) -> str:
    """The Kafka cluster's id (KRaft's, set when the broker's storage was formatted): what tells
    one broker's offsets from another's, whatever address it has."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        described = await admin.describe_cluster()
    finally:
        await admin.close()
    return str(described.get("cluster_id") or "")


async def ensure_topics(settings: KafkaSettings, partitions: int = INPUT_PARTITIONS) -> None:
    """Create the study's topics when absent (an existing topic is left as it is).

    participant-events and the outputs are kept forever (the log is the source of truth, findings
    and their reviews are the audit trail); participant-state is compacted: only each participant's latest
    snapshot matters.
    """
    topics = settings.topics
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        if topics.participant_events in existing:
            (described,) = await admin.describe_topics([topics.participant_events])
            partitions = len(described["partitions"])
        forever = {"retention.ms": "-1", "retention.bytes": "-1"}
        wanted = [
            NewTopic(topics.participant_events, partitions, 1, topic_configs={**forever, **BROKER_TIME}),
            NewTopic(topics.participant_state, partitions, 1, topic_configs=COMPACTED),
            NewTopic(topics.deviations, partitions, 1, topic_configs=forever),
            NewTopic(topics.dead_letter, 1, 1, topic_configs=forever),
            NewTopic(topics.finding_reviews, partitions, 1, topic_configs=forever),
            NewTopic(topics.audit_checkpoints, 1, 1, topic_configs=forever),
            NewTopic(topics.access_log, 1, 1, topic_configs=forever),
        ]
        missing = [t for t in wanted if t.name not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # created meanwhile by another process
                _check_created(await admin.create_topics(missing))
            await _wait_for_leaders(admin, [t.name for t in missing])
    finally:
        with contextlib.suppress(Exception):  # a client that never connected closes with an error
            await admin.close()


def _check_created(response: Any) -> None:
    """aiokafka answers a refused creation without raising: raise the first topic's error.

    On a secured broker, a principal without CREATE gets TopicAuthorizationFailedError here (the
    rules service or an operator creates the topics; see README, Secured deployment).
    """
    for name, code, *_ in response.topic_errors:
        if code and code != TopicAlreadyExistsError.errno:  # created meanwhile by another process
            raise for_code(code)(f"creating topic {name}")


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str], seconds: float = 30) -> None:
    """A new topic takes a moment to elect leaders; producing before that only logs retries."""
    async with asyncio.timeout(seconds):
        while True:
            described = await admin.describe_topics(names)
            if all(t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.1)


async def read_to_end(settings: KafkaSettings, topic: str) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every committed record of ``topic`` from the beginning to its current end, then stop."""
    tps = [TopicPartition(topic, p) for p in await partition_ids(settings, topic)]
    async for record in _read(settings, tps):
        yield record


async def read_partition(
    settings: KafkaSettings, topic: str, partition: int, start: int = 0
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    """Every committed record of one partition from offset ``start`` to its current end, in order."""
    async for record in _read(settings, [TopicPartition(topic, partition)], start):
        yield record


async def _read(
    settings: KafkaSettings, tps: list[TopicPartition], start: int = 0
) -> AsyncIterator[ConsumerRecord[bytes, bytes]]:
    if not tps:
        return
    consumer = AIOKafkaConsumer(
        **settings.client_kwargs(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        if start:
            for tp in tps:
                consumer.seek(tp, start)
        remaining = {tp for tp in tps if ends[tp] > start}
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
            for tp in list(remaining):
                # position() skips transaction markers, so it reaches the end even when records do not.
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


LAG_SCAN_LIMIT = 1_000
"""Offsets between the committed offset and the end that ``group_lag`` reads to count records
exactly; beyond it, the offset difference is the answer (an upper bound)."""


def rules_group_id(settings: KafkaSettings) -> str:
    """The consumer group of a study's rules service (a shadow run's own when ``settings.shadow``);
    here, not in services.rules, because the dashboard and ``trialguard publish --wait`` read its lag."""
    return settings.topics.consumer_group


async def group_lag(settings: KafkaSettings, group_id: str) -> dict[int, int] | None:
    """Records of participant-events not yet consumed by ``group_id``, per partition.

    A transactional producer (the lab gateway) leaves a commit marker after its records: it takes
    an offset but is no record, so the committed offset stops one short of the end for good. Where
    the gap is small, the records in it are counted (read_committed), not the offsets.

    None while the broker cannot say yet (a new broker still creating its offsets topic).
    """
    topic = settings.topics.participant_events
    tps = [TopicPartition(topic, p) for p in await partition_ids(settings, topic)]
    consumer = AIOKafkaConsumer(**settings.client_kwargs(), isolation_level="read_committed", enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(tps)
        try:
            committed = await admin.list_consumer_group_offsets(group_id)
        except KafkaError as e:
            if e.retriable:
                return None
            raise
        lag = {}
        for tp in tps:
            start = committed[tp].offset if tp in committed else 0
            gap = ends[tp] - start
            lag[tp.partition] = (
                gap if gap <= 0 or gap > LAG_SCAN_LIMIT else await _records_between(consumer, tp, start, ends[tp])
            )
        return lag
    finally:
        await admin.close()
        await consumer.stop()


async def _records_between(consumer: AIOKafkaConsumer, tp: TopicPartition, start: int, end: int) -> int:
    """Committed records with offsets in [start, end): markers and aborted records do not count."""
    consumer.assign([tp])
    consumer.seek(tp, start)
    count = 0
    try:
        async with asyncio.timeout(10):
            while await consumer.position(tp) < end:
                batch = await consumer.getmany(tp, timeout_ms=500)
                count += sum(1 for record in batch.get(tp, []) if record.offset < end)
    except TimeoutError:
        return end - start  # the broker did not let us read the gap: say what the offsets say
    return count


async def send_all_or_nothing(producer: AIOKafkaProducer, messages: Sequence[tuple[str, bytes, bytes]]) -> None:
    """Publish (topic, value, key) messages in one transaction of a transactional producer: every
    one acknowledged (acks=all) and all of them visible to ``read_committed`` readers, or none
    (the transaction is aborted on any error, which is raised).
    """
    await producer.begin_transaction()
    try:
        sent = [await producer.send(topic, value, key=key) for topic, value, key in messages]
        await asyncio.gather(*sent)
        await producer.commit_transaction()
    except BaseException:
        with contextlib.suppress(Exception):
            await producer.abort_transaction()
        raise


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    """Stop the consumer. With the broker away, aiokafka's fetcher lets the cancellation of its
    own fetch task out of ``stop()``: that is not this task being cancelled, and a stop that
    raised it left the process with a traceback and exit status 1. It is re-raised only when
    this task is being cancelled (so ``asyncio.timeout`` still works)."""
    try:
        await consumer.stop()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
