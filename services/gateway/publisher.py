"""Publishing a request's events to participant-events: all of them in one Kafka transaction, or
none.

FastStream has no transactions (its Kafka publisher is a plain idempotent producer), so the
publisher is aiokafka's transactional producer: idempotent, ``acks=all``, one transaction per
request, and a ``transactional_id`` stable per gateway process (``GatewaySettings.transactional_id``)
so that a restarted gateway fences and aborts whatever its predecessor left open. ``publish``
returns only after the broker committed the transaction, i.e. after every event was acknowledged
by all in-sync replicas; readers with ``read_committed`` (the rules service, the dashboard) never
see part of a request.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Protocol

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, ProducerFenced

from contracts import ParticipantEvent, encode
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings
from services.kafka import send_all_or_nothing

log = structlog.get_logger("trialguard.gateway.publisher")

PUBLISH_SECONDS = 30.0
"""How long one request's transaction may take before it is aborted and the request fails."""


class PublishError(RuntimeError):
    """The events were not published (the transaction was aborted, or its outcome is unknown and
    it will be aborted by the next one): the sender should retry."""


class Publisher(Protocol):
    """What the HTTP endpoints (contract JSON, FHIR, HL7) publish through."""

    async def publish(self, events: list[ParticipantEvent]) -> None:
        """Publish ``events`` in order, all or none; return once Kafka has committed them.

        Raises:
            PublishError: nothing of ``events`` is visible to ``read_committed`` readers.
        """
        ...


class KafkaPublisher:
    """The gateway's transactional producer. Requests take turns: a transactional producer has
    one transaction open at a time.

    Args:
        settings: broker, study and the transactional id.
        metrics: publish latency and events published are recorded here.
    """

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.topics = {study: replace(settings.kafka, study_id=study).topics.participant_events
                       for study in settings.studies_served}  # fmt: skip
        self._producer: AIOKafkaProducer | None = None
        self._turn = asyncio.Lock()
        self.fenced = False

    async def start(self) -> None:
        """Start the producer; the broker aborts what an earlier process with this id left open."""
        self._producer = AIOKafkaProducer(
            **self.settings.kafka.client_kwargs(),
            transactional_id=self.settings.transactional_id,
            enable_idempotence=True,
            acks="all",
            linger_ms=2,
        )
        await self._producer.start()
        log.info("publisher_ready", transactional_id=self.settings.transactional_id)

    async def stop(self) -> None:
        if self._producer is not None:
            async with self._turn:  # let the transaction in flight finish
                await self._producer.stop()

    async def publish(self, events: list[ParticipantEvent]) -> None:
        """Publish ``events``, each to its study's participant-events (admission checked the study
        is served), keyed by participant id, in one transaction.

        Each value is ``contracts.encode(event)``: the contract's own compact JSON.

        Raises:
            PublishError: the transaction was aborted (or could not be begun): nothing published.
        """
        if not events:
            return
        producer = self._producer
        if producer is None or self.fenced:
            raise PublishError("the publisher is not running")
        async with self._turn:
            started = time.perf_counter()
            try:
                async with asyncio.timeout(PUBLISH_SECONDS):
                    await send_all_or_nothing(
                        producer, [(self.topics[e.study_id], encode(e), e.participant_id.encode()) for e in events]
                    )
            except ProducerFenced:
                # Another gateway started with this transactional id: this one can never publish again.
                self.fenced = True
                log.error("publisher_fenced", transactional_id=self.settings.transactional_id)
                raise PublishError("another gateway took over this gateway's transactional id") from None
            except (KafkaError, TimeoutError) as e:
                log.warning("publish_failed", events=len(events), error=type(e).__name__)
                raise PublishError(f"Kafka did not take the events ({type(e).__name__})") from None
            self.metrics.publish_seconds.observe(time.perf_counter() - started)
            self.metrics.events_published.inc(len(events))
            log.info("published", events=len(events), event_ids=[str(e.event_id) for e in events[:20]])
