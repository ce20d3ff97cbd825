"""Which participants are registered in the study, and at which site: the gateway's one piece of
state, folded from ParticipantRegistered events on participant-events.

Why a registry of its own: a lab result for a participant nobody registered is almost always a
wrong id typed at the lab, and is cheapest to refuse at the door, while the sender is still
listening. The gateway cannot ask the rules service (its state is per partition, in compacted
snapshots), and the dashboard's read model is another process's. A participant is ~100 bytes in
memory (its id and a slot; the site's name is one string shared: 100,000 participants, about
10 MiB): the registry grows with the cohort's enrollment and nothing else. Reading the
ParticipantRegistered events of the log from offset 0 at start is quick next to the rest of the
stack's start. The topic is read with
``read_committed``, so only registrations that really happened count. Until the registry has
caught up with the end of the log as it was at start, the gateway answers 503 (``/health``:
``loading_participants``) rather than refuse a lab result it cannot judge.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from faststream.kafka import KafkaBroker, TopicPartition
from faststream.kafka.annotations import KafkaMessage

from contracts import ParticipantEvent
from services.gateway.recent_ids import RecentIds
from services.kafka import KafkaSettings, partition_ids

log = structlog.get_logger("trialguard.gateway.registry")

REGISTERED = "ParticipantRegistered"
_MARKER = b'"ParticipantRegistered"'
BATCH_RECORDS = 1_000


PUBLISHED_IDS_KEPT = 200_000
"""Event ids remembered to answer a resent message without publishing it again (about 4 MiB:
:class:`RecentIds`). The rules service de-duplicates by event id anyway: this only keeps the log
free of copies."""

_EVENT_ID = re.compile(rb'"event_id"\s*:\s*"([0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12})"')


class ParticipantRegistry:
    """Participant id → site id of every registered participant, and the latest event ids
    published (in memory)."""

    def __init__(self, registered: dict[str, str] | None = None) -> None:
        self._sites: dict[str, str] = {}
        self._site_names: dict[str, str] = {}
        """One string per site, shared by its participants (not one copy per parsed record)."""
        for pid, site in (registered or {}).items():
            self._register(pid, site)
        self._published = RecentIds(PUBLISHED_IDS_KEPT)

    def published(self, event_id: object) -> bool:
        """Whether an event with this id is on participant-events already (as far as remembered)."""
        try:
            return _as_uuid(event_id) in self._published
        except ValueError:
            return False  # not an id the contract allows: never published

    def _remember(self, event_id: object) -> None:
        with contextlib.suppress(ValueError):  # not an id: the rules service dead-letters it
            self._published.add(_as_uuid(event_id))

    def _register(self, participant_id: str, site_id: str) -> None:
        # The first registration stands: the rules service treats a second as a duplicate.
        if participant_id not in self._sites:
            self._sites[participant_id] = self._site_names.setdefault(site_id, site_id)

    def site_of(self, participant_id: str) -> str | None:
        """The site the participant was registered at, or None when never registered."""
        return self._sites.get(participant_id)

    def note(self, events: Iterable[ParticipantEvent]) -> None:
        """Add the registrations among ``events`` (the gateway's own, once published)."""
        for event in events:
            self._remember(event.event_id)
            if event.event_type == REGISTERED:
                self._register(event.participant_id, event.site_id)

    def note_record(self, value: bytes | None) -> None:
        """Add a registration from a record's value; anything else is skipped (the rules service
        dead-letters what breaks the contract, and a registration needs only these two ids)."""
        if value and (found := _EVENT_ID.search(value)) is not None:
            self._remember(found.group(1).decode("ascii"))
        if not value or _MARKER not in value:
            return
        try:
            event = json.loads(value)
        except ValueError:
            return
        if isinstance(event, dict) and event.get("event_type") == REGISTERED:
            pid, site = event.get("participant_id"), event.get("site_id")
            if isinstance(pid, str) and isinstance(site, str):
                self._register(pid, site)

    def __len__(self) -> int:
        return len(self._sites)


def _as_uuid(event_id: object) -> uuid.UUID:
    """``event_id`` as a UUID (ValueError: it is not one)."""
    return event_id if isinstance(event_id, uuid.UUID) else uuid.UUID(str(event_id))


class RegistryConsumer:
    """Feeds a :class:`ParticipantRegistry` from participant-events with a FastStream subscriber.

    Every partition is assigned (no consumer group: each gateway reads the whole topic), from
    offset 0, ``read_committed``.

    Args:
        settings: broker and study.
        registry: the registry to fill.
    """

    def __init__(self, settings: KafkaSettings, registry: ParticipantRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.broker = KafkaBroker(
            settings.bootstrap_servers,
            security=settings.faststream_security(),
            logger=None,
            client_id="trialguard-gateway",
        )
        self._subscriber: Any = None
        self.caught_up = asyncio.Event()
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe and start; ``caught_up`` is set once the log's end at start has been read.

        The study's topics must exist (the gateway creates them first).
        """
        topic = self.settings.topics.participant_events
        partitions = [TopicPartition(topic, p, declare=False) for p in await partition_ids(self.settings, topic)]
        subscriber = self.broker.subscriber(
            partitions=partitions,
            batch=True,
            max_records=BATCH_RECORDS,
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            title=f"{topic}:gateway-registry",
        )

        async def registrations(message: KafkaMessage) -> None:
            raw = message.raw_message
            for record in raw if isinstance(raw, tuple) else (raw,):
                self.registry.note_record(record.value)

        subscriber(registrations)
        self._subscriber = subscriber
        await self.broker.start()
        consumer = subscriber.consumer
        assert consumer is not None  # started above
        for partition in consumer.assignment():
            consumer.seek(partition, 0)
        ends = await consumer.end_offsets(list(consumer.assignment()))
        self._watch = asyncio.create_task(self._wait_for(ends), name="gateway-registry-catch-up")

    async def _wait_for(self, ends: dict[Any, int]) -> None:
        consumer = self._subscriber.consumer
        while True:
            # position() is past transaction markers too, so the end is reached exactly.
            positions = {tp: await consumer.position(tp) for tp in ends}
            if all(positions[tp] >= end for tp, end in ends.items()):
                self.caught_up.set()
                log.info("participant_registry_loaded", participants=len(self.registry))
                return
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.broker.stop()
