"""The dashboard's Kafka side: FastStream subscribers that keep the read model up to date.

One subscriber per topic of each study served — deviations, finding-reviews, participant-events,
dead-letter, access-log — each feeding that study's read model, each
reading every partition with ``isolation_level="read_committed"`` (only what the rules service
committed) and no consumer group: the read model keeps its own offsets in SQLite, so the
subscribers are assigned their partitions and seek to those offsets (FastStream's
``auto_offset_reset`` applies only to a group without committed offsets).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import structlog
from faststream.kafka import KafkaBroker, TopicPartition
from faststream.kafka.annotations import KafkaMessage

from services.dashboard.store import Applied, ReadModel, Record
from services.kafka import KafkaSettings, cluster_id, ensure_topics, partition_ids

log = structlog.get_logger("trialguard.dashboard.consumer")

BATCH_RECORDS = 500
"""Records per SQLite transaction at most: large enough to rebuild quickly, small enough to show
findings soon."""

RETRY_SECONDS = 1.0


class ReadModelConsumer:
    """Feeds each study's read model from its topics and tells ``on_applied`` what each batch changed.

    Args:
        settings: broker (and study, when ``store`` is one read model).
        store: the read model of ``settings.study_id``, or the read model of each study served.
        on_applied: called in the event loop after each batch that changed something.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        store: ReadModel | Mapping[str, ReadModel],
        on_applied: Callable[[Applied], None],
    ) -> None:
        self.settings = settings
        self.stores: dict[str, ReadModel] = dict(store) if isinstance(store, Mapping) else {settings.study_id: store}
        self.store = next(iter(self.stores.values()))
        """The first study's read model (a single-study caller's)."""
        self._store_of: dict[str, ReadModel] = {}
        for model in self.stores.values():
            topics = model.topics
            for topic in (
                topics.deviations,
                topics.finding_reviews,
                topics.participant_events,
                topics.dead_letter,
                topics.access_log,
            ):
                self._store_of[topic] = model
        self.on_applied = on_applied
        # The broker also publishes reviews: idempotent, acks=all, so "done" means Kafka has it.
        self.broker = KafkaBroker(
            settings.bootstrap_servers,
            security=settings.faststream_security(),
            logger=None,
            client_id="trialguard-dashboard",
            acks="all",
            enable_idempotence=True,
        )
        self._subscribers: dict[str, Any] = {}
        self._caught_up = asyncio.Event()
        # Every write of the read models on one thread of its own, not spread over asyncio's default
        # pool: SQLite writes are serial anyway, and each pool thread gets a malloc arena of its
        # own (the suspected cause of the soak's slow RSS growth while the traced heap was flat).
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read-model-writer")

    @property
    def topic_names(self) -> tuple[str, ...]:
        """Every topic read, study by study."""
        return tuple(self._store_of)

    async def start(self) -> None:
        """Create each study's topics when absent, rebuild a read model of another cluster or
        namespace, subscribe, start, and seek to the stored offsets."""
        for study in self.stores:
            await ensure_topics(replace(self.settings, study_id=study))
        # Before reading the stored offsets: offsets of another cluster or namespace mean nothing here.
        cluster = await cluster_id(self.settings)
        for model in self.stores.values():
            await asyncio.to_thread(model.check_origin, cluster, self.settings.namespace)
        for topic in self.topic_names:
            partitions = [TopicPartition(topic, p, declare=False) for p in await partition_ids(self.settings, topic)]
            subscriber = self.broker.subscriber(
                partitions=partitions,
                batch=True,
                max_records=BATCH_RECORDS,
                isolation_level="read_committed",
                auto_offset_reset="earliest",
                title=f"{topic}:dashboard",
            )
            subscriber(self._handler(topic))
            self._subscribers[topic] = subscriber
        await self.broker.start()
        for topic in self.topic_names:
            self._seek_to_stored(topic)
        log.info("read_model_consuming", topics=len(self.topic_names), studies=list(self.stores))

    def _seek_to_stored(self, topic: str) -> None:
        consumer = self._subscribers[topic].consumer
        stored = self._store_of[topic].offsets(topic)
        for partition in consumer.assignment():
            consumer.seek(partition, stored.get(partition.partition, 0))

    def _handler(self, topic: str) -> Callable[..., Any]:
        store = self._store_of[topic]

        async def consume(message: KafkaMessage) -> None:
            raw = message.raw_message
            batch = raw if isinstance(raw, tuple) else (raw,)
            records = [
                Record(r.topic, r.partition, r.offset, r.timestamp, r.value, tuple(r.headers or ())) for r in batch
            ]
            try:
                applied = await asyncio.get_running_loop().run_in_executor(self._writer, store.apply, records)
            except Exception as error:
                # Nothing of the batch was written (one transaction): read it again from the stored offsets.
                log.error("read_model_write_failed", topic=topic, error=type(error).__name__, records=len(records))
                await asyncio.sleep(RETRY_SECONDS)
                self._seek_to_stored(topic)
                return
            if applied:
                self.on_applied(applied)

        consume.__name__ = "read_model_" + "".join(c if c.isalnum() else "_" for c in topic)
        return consume

    async def lag(self) -> dict[str, int]:
        """Records not yet in the read model, per topic (0 when caught up)."""
        result = {}
        for topic, subscriber in self._subscribers.items():
            consumer = subscriber.consumer
            if consumer is None:
                continue
            partitions = list(consumer.assignment())
            ends = await consumer.end_offsets(partitions)
            stored = self._store_of[topic].offsets(topic)
            behind = 0
            for partition in partitions:
                # The consumer's position is past the transaction markers, which are no records;
                # what is stored is the floor after a restart.
                position = max(await consumer.position(partition), stored.get(partition.partition, 0))
                behind += max(0, ends[partition] - position)
            result[topic] = behind
        return result

    async def stop(self) -> None:
        await self.broker.stop()
        self._writer.shutdown(wait=True)
