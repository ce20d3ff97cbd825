"""The rules service: consume participant events, fold and decide, publish findings. Exactly once.

Imperative shell around the pure core (``events.process``). Each assigned input partition has its
own transactional producer, with a transactional id stable per partition
(``<group>.p<partition>``): whoever owns the partition next (a restarted process, another
instance after a rebalance) opens the same id and so fences its predecessor and aborts what it
left open. aiokafka has no KIP-447 (no group-generation fencing of offsets), so this id per
partition is what keeps one writer per partition. Per batch of one partition, one transaction
(``transactions``) carries:
  - the findings (DeviationRaised, SafetyAlertRaised) to the deviations topic,
  - the dead-lettered input, with the reason and its topic/partition/offset,
  - every ``snapshot_every`` offsets, a snapshot round: every participant changed since the last
    round, to the compacted participant-state topic (same partition number as the input
    partition; see ``rounds``), captured at its offset and encoded off the hot path, so carried
    by the first transaction after it is encoded (``prepared``),
  - the partition's progress record (the offset committed, on the same state partition, where
    it cannot expire as the group's offsets do; a take-over restores to it: ``rounds``).
So a finding, a snapshot and an offset are published together or not at all. The group's
offsets follow each committed transaction outside it, for lag and tools (``group_offsets``).

One loop fetches; each owned partition has a worker task that processes its fetched records as
they come and commits them as soon as they have something to publish, at the latest after
``max_batch`` records or ``COMMIT_SECONDS``: a finding waits neither for a full batch, nor for
another partition's transaction, nor for a transaction that only moves offsets. A partition with
two batches waiting is not fetched for until its worker catches up.

Nothing stops the service but SIGTERM/SIGINT or a configuration error:
  - a record, whatever its bytes, ends processed or dead-lettered (``records``);
  - a revocation waits for the partition's transaction to end before closing its producer;
  - a failed transaction (fenced, commit failed, broker gone) is aborted where it can be, the
    partition's state and producer are dropped, and the partition is re-opened with a new
    producer, restored from snapshots and the progress record, with capped backoff;
  - a broker that is down at start or goes away later is waited for (``weather``).

This module holds the fetch loop and the partitions' workers; taking partitions over, releasing
and re-opening them is ``ownership``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition

from events.bounds import MAX_KEPT_FACTS
from events.snapshots import SnapshotError
from protocol import ProtocolHistory
from protocol.versions import Judge, history_of
from services.errors import ConfigurationError
from services.kafka import KafkaSettings, ensure_topics, rules_group_id, stop_consumer
from services.metrics import Metrics
from services.participant_records import Record
from services.rules.chains import Checkpointer
from services.rules.group_offsets import GroupOffsets
from services.rules.membership import (
    CLIENT_ID,
    InstanceIdInUseError,
    Superseded,
    check_instance_id,
    held_elsewhere,
    member_id_of,
)
from services.rules.ownership import PartitionOwnership
from services.rules.partitions import OwnedPartition, fetch_lag
from services.rules.records import Outgoing, RecordHandler, States
from services.rules.rounds import DEFAULT_SNAPSHOT_EVERY
from services.rules.timing import Timings
from services.rules.transactions import Batch, Transactions
from services.rules.weather import Backoff, BrokerWatch, error_fields, is_configuration_error

log = structlog.get_logger("trialguard.rules")

TRANSACTION_SECONDS = 60.0
"""A partition's transaction that has not ended after this long is given up and the partition
re-opened (the broker aborts it after the producer's ``transaction_timeout_ms``, also 60 s)."""

POLL_SECONDS = 0.2
"""The fetch loop's longest wait for records before it looks at partitions to re-open."""

LAG_SECONDS = 1.0
"""How often the consumer lag metric is brought up to date."""

COMMIT_SECONDS = 0.1
"""Records with nothing to publish are committed at most this long after the first of them was
processed, or with the next records that publish something, whichever comes first: a finding
does not wait for a transaction that only moves offsets. Kafka Streams commits every 100 ms under
exactly-once; a transaction's own round trips take a few milliseconds on a local broker."""

SLICE_RECORDS = 50
"""Records processed at once before the worker looks whether its batch is due (a finding commits
without the rest of a 500-record batch being folded first) and lets the event loop run (another
partition's finding, the fetch loop)."""

WAITING_BATCHES = 2
"""A partition with this many batches fetched and waiting for its worker is not fetched for."""


class RulesService(PartitionOwnership):
    """Runs a study's protocol over its participant-events topic.

    Args:
        settings: broker and study.
        protocol: the study's protocol history (``protocol.registry.versions_for``): each event
            is decided under the version in force at its ``occurred_at`` and site. A single
            version is in force throughout.
        max_batch: records per transaction at most.
        metrics: where counts, lag and latency go (a fresh set by default); its
            ``trialguard_ready`` follows this service's ``ready``.
        session_timeout_ms: how long a dead instance holds its partitions before the group
            moves them on.
        audit_key: the Ed25519 key file that signs the audit hash-chain checkpoints, written to
            audit-checkpoints in the batch transaction every ``checkpoint_every`` records of a
            partition; None writes none.
        checkpoint_every: records of a partition between two checkpoints.
        snapshot_every: offsets of a partition between two snapshot rounds (see ``rounds``): a
            round writes the participants changed since the previous one; a restore processes the
            records after the last round again.
        freeze_restored: after each take-over, move every object of the process so far (the
            restored state above all) out of the cyclic garbage collector's sight
            (``gc.freeze``), so that its full collections do not walk the whole restored state
            again and again (about 0.2 s for 200,000 events' worth). For a process of its own
            (``trialguard rules serve``), not for one shared with other work.
        max_kept_facts: the facts one participant's state keeps at most (``events.bounds``);
            an event beyond is dead-lettered. The default but in tests: a replay decides with it.
        instance_id: a stable name of this instance: it joins the group as a static member
            (``membership``), so that a restart under the same name gets its partitions back
            without a rebalance. None: a dynamic member, as before.

    Raises:
        KeyFileError: ``audit_key`` cannot be read as an Ed25519 private key.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        protocol: Judge,
        *,
        max_batch: int = 500,
        metrics: Metrics | None = None,
        session_timeout_ms: int = 10_000,
        audit_key: Path | None = None,
        checkpoint_every: int = 1000,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        freeze_restored: bool = False,
        max_kept_facts: int = MAX_KEPT_FACTS,
        instance_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.history: ProtocolHistory = history_of(protocol)
        self.topics = settings.topics
        self.group_id = rules_group_id(settings)
        self.max_batch = max_batch
        self.snapshot_every = snapshot_every
        self.freeze_restored = freeze_restored
        self.metrics = metrics or Metrics()
        self.metrics.ready = lambda: self.ready
        self.metrics.participants = self._participants
        self.session_timeout_ms = session_timeout_ms
        self.instance_id = check_instance_id(instance_id)
        self.client_id = CLIENT_ID if self.instance_id is None else f"{CLIENT_ID}-{self.instance_id}"
        self.member_id: str | None = None  # as of the last assignment (static members look at it)
        self.superseded = False  # another live process joined under this instance id: stop, do not rejoin
        self._fetching: asyncio.Task[None] | None = None
        self.handler = RecordHandler(settings, self.history, max_kept_facts=max_kept_facts)
        self.partitions: dict[TopicPartition, OwnedPartition] = {}
        self.reopening = {}
        self.consumer: AIOKafkaConsumer | None = None
        self.group_offsets: GroupOffsets | None = None  # with the consumer
        self.joined = False  # the group has assigned this instance its partitions (maybe none) once
        self.broker = BrokerWatch(settings.bootstrap_servers)
        self._ownership = asyncio.Lock()  # one take-over or release at a time (listener vs main loop)
        self.checkpointer = (
            None
            if audit_key is None
            else Checkpointer.from_file(audit_key, checkpoint_every, settings.topics.audit_checkpoints)
        )
        self.timings = Timings()
        self.timings.register(self.metrics.registry)
        self.transactions = Transactions(
            self.handler, self.topics, self.metrics, self.checkpointer, snapshot_every, self.timings
        )
        self._workers: set[asyncio.Task[None]] = set()
        self._drained = asyncio.Event()  # a worker took records off a partition that was not fetched for

    def handle(self, record: Record, states: States, *, replaying: bool = False) -> list[Outgoing]:
        """Process one consumed record against ``states`` (see ``RecordHandler.handle``)."""
        return self.handler.handle(record, states, replaying=replaying)

    @property
    def status(self) -> str:
        """``waiting_for_broker``, ``restoring`` (a partition assigned but not open) or ``ready``."""
        consumer = self.consumer
        if consumer is None or not self.broker.reachable:
            return "waiting_for_broker"
        if not self.joined or any(tp not in self.partitions for tp in consumer.assignment()):
            return "restoring"
        return "ready"

    @property
    def ready(self) -> bool:
        """Whether the group has assigned this instance its partitions and every one is open (an
        instance left without partitions, with more instances than partitions, is ready too)."""
        return self.status == "ready"

    def _participants(self) -> tuple[int, int]:
        """(decoded in memory, at rest) over the open partitions (``trialguard_participants``)."""
        parts = list(self.partitions.values())
        return sum(p.states.decoded for p in parts), sum(p.states.undecoded for p in parts)

    # --- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, one transaction per partition and batch.

        Raises:
            ConfigurationError: the broker refuses the settings (not: the broker is unavailable).
            InstanceIdInUseError: another live process joined the group under this instance id
                (this one gave its partitions up first).
        """
        # A task of its own, so that the revocation callback can end it when the id was taken: the
        # consumer would leave it waiting for an assignment that does not come.
        self._fetching = asyncio.create_task(self._run(stop))
        try:
            await self._fetching
        except asyncio.CancelledError:
            if not self.superseded:
                raise
        if self.superseded:
            raise InstanceIdInUseError(
                f"instance id {self.instance_id!r} was taken by another process in group {self.group_id!r}; "
                "this one gave its partitions up and stopped (each process needs an id of its own)"
            )

    async def _run(self, stop: asyncio.Event) -> None:
        consumer = await self._connect(stop)
        if consumer is None:
            return
        backoff = Backoff()
        watch = asyncio.create_task(self.broker.watch(consumer, stop))
        probe = asyncio.create_task(self.timings.probe_loop(stop))
        assert self.group_offsets is not None
        following = asyncio.create_task(self.group_offsets.run(stop))
        loop = asyncio.get_running_loop()
        lag_due = 0.0
        try:
            while not stop.is_set():
                try:
                    await self._fetch(consumer)
                    await self._reopen_due(consumer)
                    if loop.time() >= lag_due:
                        lag_due = loop.time() + LAG_SECONDS
                        self.metrics.lag = {tp.partition: await self._lag(consumer, tp) for tp in consumer.assignment()}
                    backoff.reset()
                except Exception as e:  # whatever the broker does, the loop goes on
                    log.warning("consumer_failed", **error_fields(e))
                    await backoff.wait(stop)
        finally:
            watch.cancel()
            probe.cancel()
            following.cancel()
            await self._release(list(self.partitions))
            with contextlib.suppress(Exception):
                async with asyncio.timeout(30):
                    await stop_consumer(consumer)
            await self._release(list(self.partitions))  # any taken over while the consumer stopped
            if self._workers:
                await asyncio.wait(self._workers, timeout=10)
            log.info("stopped", **self.metrics.counts())

    async def _fetch(self, consumer: AIOKafkaConsumer) -> None:
        """Hand what the consumer fetched to the partitions' workers. A partition whose worker is
        behind is left out: its records stay with the consumer, which fetches no more for it."""
        assigned = consumer.assignment()
        wanted = [tp for tp in assigned if not self._behind(tp)]
        if assigned and not wanted:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), POLL_SECONDS)
            return
        asked = time.perf_counter()
        batch = await consumer.getmany(*wanted, timeout_ms=int(POLL_SECONDS * 1000), max_records=self.max_batch)
        if batch:
            self.timings.observe("poll", time.perf_counter() - asked)
        for tp, records in batch.items():
            part = self.partitions.get(tp)
            if part is not None and not part.closing:  # else revoked, or being re-opened: read again then
                part.add(records)

    def _behind(self, tp: TopicPartition) -> bool:
        part = self.partitions.get(tp)
        return part is not None and len(part.pending) >= WAITING_BATCHES * self.max_batch

    async def _lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
        """Records between the last committed batch and the partition's end (as last fetched)."""
        part = self.partitions.get(tp)
        return await fetch_lag(consumer, tp) + (0 if part is None else len(part.pending))

    async def _connect(self, stop: asyncio.Event) -> AIOKafkaConsumer | None:
        """Create the topics and join the group, waiting for the broker as long as it takes."""
        backoff = Backoff(first=0.5, cap=5.0)
        while not stop.is_set():
            consumer = AIOKafkaConsumer(
                **self.settings.client_kwargs(),
                group_id=self.group_id,
                group_instance_id=self.instance_id,
                client_id=self.client_id,
                enable_auto_commit=False,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                max_poll_records=self.max_batch,
                session_timeout_ms=self.session_timeout_ms,
                heartbeat_interval_ms=1000,
                fetch_max_wait_ms=50,  # at a trickle, a finding should not wait half a second for its event
            )
            try:
                await ensure_topics(self.settings)
                await consumer.start()
            except Exception as e:
                with contextlib.suppress(Exception):
                    await consumer.stop()
                if is_configuration_error(e):
                    raise ConfigurationError(f"the broker refused the settings: {type(e).__name__}: {e}") from e
                delay = backoff.next_delay()
                log.warning("waiting_for_broker", bootstrap_servers=self.settings.bootstrap_servers,
                            retry_in_s=round(delay, 2), **error_fields(e))  # fmt: skip
                await backoff.wait(stop, delay)
                continue
            self.consumer = consumer
            self.group_offsets = GroupOffsets(consumer)
            self.broker.reachable = True
            consumer.subscribe([self.topics.participant_events], listener=_Rebalance(self))
            log.info("started", topic=self.topics.participant_events, group_id=self.group_id,
                     instance_id=self.instance_id,
                     protocol_versions=[v.name for v in self.history.versions])  # fmt: skip
            return consumer
        return None

    # --- one transaction per partition and batch -------------------------------------------------

    async def _work(self, tp: TopicPartition, part: OwnedPartition) -> None:
        """A partition's worker, until the partition is released or dropped: process its fetched
        records as they come, and commit them as soon as they have something to publish (or
        ``max_batch`` records, or ``COMMIT_SECONDS`` have passed since the first of them)."""
        loop = asyncio.get_running_loop()
        batch: Batch | None = None
        try:
            while not part.closing:
                if part.pending:
                    batch = batch or self.transactions.begin(part, loop.time())
                    most = min(SLICE_RECORDS, self.max_batch - len(batch.records))
                    self.transactions.process(part, batch, part.take(most))
                    self._drained.set()
                    if (
                        not self.transactions.due(part, batch, self.max_batch, loop.time())
                        and loop.time() < batch.opened + COMMIT_SECONDS
                    ):
                        await asyncio.sleep(0)  # the other partitions and the fetch loop, between slices
                        continue
                elif batch is None or loop.time() < batch.opened + COMMIT_SECONDS:
                    part.wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            part.wake.wait(), None if batch is None else batch.opened + COMMIT_SECONDS - loop.time()
                        )
                    continue
                await self._commit_or_recover(tp, part, batch)
                batch = None
        except SnapshotError as e:  # a restored snapshot that cannot be decoded now its participant came
            log.warning("snapshot_undecodable", partition=tp.partition, error=type(e).__name__)
            await self._start_over(tp, part)
        except Exception as e:  # a bug here must not leave the partition unconsumed for good
            log.error("partition_worker_failed", partition=tp.partition, **error_fields(e))
            await self._start_over(tp, part)

    async def _start_over(self, tp: TopicPartition, part: OwnedPartition) -> None:
        """Drop the partition (unless that was done already) and re-open it, with backoff."""
        if self.partitions.get(tp) is part:
            await self._drop(tp, part, abort=True)
            self._schedule_reopen(tp)

    async def _commit_or_recover(self, tp: TopicPartition, part: OwnedPartition, batch: Batch) -> None:
        async with part.lock:
            if part.closing:
                return  # revoked, or dropped: whoever opens it next reads these again
            try:
                async with asyncio.timeout(TRANSACTION_SECONDS):
                    await self.transactions.commit(tp, part, batch)
                if self.group_offsets is not None:
                    self.group_offsets.advance(tp, part.next_offset)
            except Exception as e:  # fenced, commit failed, broker gone: the partition starts over
                log.warning("transaction_failed", partition=tp.partition, **error_fields(e))
                self.metrics.transactions_failed += 1
                await self._start_over(tp, part)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, service: RulesService) -> None:
        self.service = service

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        service = self.service
        if revoked:  # an instance that keeps its partitions across a restart of another says none here
            log.info("partitions_revoked", partitions=sorted(tp.partition for tp in revoked))
        await service._release(revoked)
        member_id = service.member_id  # None before the first assignment: a dead predecessor is no rival
        if (
            service.instance_id is not None
            and member_id is not None
            and await held_elsewhere(service.settings, service.group_id, service.instance_id, member_id)
        ):
            log.error("instance_id_taken", instance_id=service.instance_id, group_id=service.group_id)
            service.superseded = True
            if service._fetching is not None:
                service._fetching.cancel()  # it gives up what it holds and stops the consumer
            raise Superseded  # past aiokafka's coordinator, which would rejoin under the id otherwise

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if self.service.consumer is not None:
            self.service.member_id = member_id_of(self.service.consumer)
        await self.service._assign(assigned)
