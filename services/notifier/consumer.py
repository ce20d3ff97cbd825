"""The notifier's Kafka side: the deviations topic in a consumer group of its own, the outbox
written before the offsets are committed.

A crash after the outbox commit and before the offset commit reads the batch again: its rows
are already there, so nothing is queued twice; a crash before the outbox commit loses nothing,
since the offsets were not committed either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import structlog
from aiokafka import AIOKafkaConsumer

from services.kafka import KafkaSettings, ensure_topics, stop_consumer
from services.notifier.matching import read_notice, recipients
from services.notifier.store import NotifierStore
from services.notifier.subscriptions import Owner

log = structlog.get_logger("trialguard.notifier.consumer")

BATCH_RECORDS = 500

OwnersLookup = Callable[[], Mapping[str, Owner]]
"""The dashboard's enabled users as subscription owners, read again for every batch (a user
removed, disabled or moved to another site is honoured at once)."""


def group_id(settings: KafkaSettings) -> str:
    """The notifier's consumer group: one per study and namespace."""
    return f"{settings.namespace}.{settings.study_id}.notifier"


class FindingsConsumer:
    """Reads findings, queues the matching deliveries, then commits the offsets.

    Args:
        settings: broker and study.
        store: subscriptions and outbox.
        owners: the subscription owners now.
        on_queued: called after a batch queued new deliveries (wakes the deliverer).
    """

    def __init__(
        self, settings: KafkaSettings, store: NotifierStore, owners: OwnersLookup, on_queued: Callable[[], None]
    ) -> None:
        self.settings = settings
        self.store = store
        self.owners = owners
        self.on_queued = on_queued
        self.findings_read = 0
        self.deliveries_queued = 0
        self.ready = False

    async def run(self) -> None:
        """Consume until cancelled."""
        await ensure_topics(self.settings)
        consumer = AIOKafkaConsumer(
            self.settings.topics.deviations,
            **self.settings.client_kwargs(),
            group_id=group_id(self.settings),
            client_id="trialguard-notifier",
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        self.ready = True
        log.info("notifier_consuming", topic=self.settings.topics.deviations, group=group_id(self.settings))
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=BATCH_RECORDS)
                records = [record for batch in batches.values() for record in batch]
                if not records:
                    continue
                queued = await asyncio.to_thread(self._queue, [(r.value, r.timestamp / 1000) for r in records])
                await consumer.commit()  # only now: the outbox holds the batch's deliveries
                if queued:
                    self.on_queued()
        finally:
            self.ready = False
            await stop_consumer(consumer)

    def _queue(self, values: list[tuple[bytes | None, float]]) -> int:
        read = (read_notice(value, published_at) for value, published_at in values)
        notices = [n for n in read if n is not None and n.study_id == self.settings.study_id]
        subscriptions = self.store.subscriptions(self.settings.study_id)
        owners = self.owners() if subscriptions else {}
        pairs = [(s, n) for n in notices for s in recipients(n, subscriptions, owners)]
        queued = self.store.enqueue(pairs) if pairs else 0
        self.findings_read += len(notices)
        self.deliveries_queued += queued
        log.info("findings_queued", findings=len(notices), deliveries=queued, records=len(values))
        return queued
