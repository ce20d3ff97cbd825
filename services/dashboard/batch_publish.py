"""Publishing a bulk review's events to finding-reviews: all of them in one Kafka transaction, or
none.

FastStream's Kafka publisher has no transactions, so this is aiokafka's transactional producer
(idempotent, ``acks=all``), as the gateway uses for a request's events. Its ``transactional_id``
is stable per dashboard address, so a restarted dashboard fences and aborts a transaction its
predecessor left open; readers with ``read_committed`` never see part of a batch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from typing import Final

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced

from contracts import FindingReviewed
from services.dashboard.settings import DashboardSettings
from services.kafka import send_all_or_nothing

log = structlog.get_logger("trialguard.dashboard.batch_publish")

PUBLISH_SECONDS: Final = 30.0
"""How long one batch's transaction may take before it is aborted and the request fails."""


class BatchPublishError(RuntimeError):
    """The batch was not published: its transaction was aborted (or never begun)."""


def transactional_id(settings: DashboardSettings) -> str:
    """``<namespace>.<study>.dashboard.<host>:<port>``; a random instance when the port is chosen
    by the system (0), since another process may get the same address later."""
    instance = f"{settings.host}:{settings.port}" if settings.port else uuid.uuid4().hex
    return f"{settings.kafka.namespace}.{settings.kafka.study_id}.dashboard.{instance}"


class ReviewBatchPublisher:
    """The dashboard's transactional producer for bulk reviews; batches take turns.

    Args:
        settings: broker, study and the dashboard's address (its transactional id).
        topic_of: the finding-reviews topic of a study (a batch is of one study, the request's);
            the default study's when not given.
    """

    def __init__(self, settings: DashboardSettings, topic_of: Callable[[str], str] | None = None) -> None:
        self.topic_of = topic_of or (lambda _study: settings.kafka.topics.finding_reviews)
        self.transactional_id = transactional_id(settings)
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._turn = asyncio.Lock()

    async def start(self) -> None:
        """Start the producer; the broker aborts what an earlier process with this id left open."""
        self._producer = AIOKafkaProducer(
            **self._settings.kafka.client_kwargs(),
            transactional_id=self.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )
        await self._producer.start()
        log.info("batch_publisher_ready", transactional_id=self.transactional_id)

    async def stop(self) -> None:
        if self._producer is not None:
            async with self._turn:  # let the transaction in flight finish
                await self._producer.stop()
            self._producer = None

    async def publish(self, reviews: Sequence[FindingReviewed]) -> None:
        """Publish ``reviews`` to their study's finding-reviews (key = participant id) in one transaction.

        Raises:
            BatchPublishError: the transaction was aborted or could not be begun: nothing published.
        """
        producer = self._producer
        if producer is None:
            raise BatchPublishError("the dashboard is not connected to Kafka yet")
        async with self._turn:
            try:
                async with asyncio.timeout(PUBLISH_SECONDS):
                    await send_all_or_nothing(
                        producer,
                        [
                            (self.topic_of(r.study_id), r.model_dump_json().encode(), r.participant_id.encode())
                            for r in reviews
                        ],
                    )
            except ProducerFenced:
                log.error("batch_publisher_fenced", transactional_id=self.transactional_id)
                raise BatchPublishError("another dashboard took over this dashboard's transactional id") from None
            except (KafkaError, TimeoutError) as error:
                log.warning("batch_publish_failed", reviews=len(reviews), error=type(error).__name__)
                raise BatchPublishError(f"Kafka did not take the reviews ({type(error).__name__})") from None
