"""What one instance holds for an input partition it owns, and how that state comes back.

State is derived: the compacted participant-state topic restores it quickly, and the
participant-events log itself rebuilds it when snapshots are missing or unreadable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import structlog
from aiokafka import AIOKafkaProducer

from events import snapshots
from protocol import ParticipantState
from services.audit.chain import Chain
from services.kafka import KafkaSettings, read_partition
from services.rules.records import RecordHandler

log = structlog.get_logger("trialguard.rules")


@dataclass
class OwnedPartition:
    """An assigned input partition: its transactional producer, its participants' state, and
    the next offset to commit.

    ``lock`` is held by the partition's transaction from begin to commit or abort, so that a
    revocation waits for it before closing the producer. ``closing`` stops new transactions.
    Records below ``next_offset`` were committed already (fetched again after a re-open) and are
    skipped.
    """

    producer: AIOKafkaProducer
    states: dict[str, ParticipantState] = field(default_factory=dict)
    next_offset: int = 0
    chain: Chain | None = None
    """The audit hash chain as of ``next_offset`` (None when no checkpoints are written)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False


async def restore_snapshots(settings: KafkaSettings, partition: int) -> tuple[dict[str, ParticipantState], int]:
    """The latest committed snapshot of every participant of one partition, and how many
    snapshot records were read to find them.

    Until the broker compacts the topic, it holds every snapshot ever written: only the last of
    each participant is decoded.

    Raises:
        SnapshotError: a participant's latest snapshot cannot be read.
    """
    latest: dict[bytes, bytes | None] = {}
    read = 0
    async for record in read_partition(settings.bootstrap_servers, settings.topics.participant_state, partition):
        read += 1
        if record.key is not None:
            latest[record.key] = record.value
    states = {key.decode(): snapshots.decode(value) for key, value in latest.items() if value is not None}
    return states, read


async def rebuild_from_log(
    settings: KafkaSettings, handler: RecordHandler, partition: int, upto: int
) -> tuple[dict[str, ParticipantState], int]:
    """The state of one partition's participants rebuilt by re-reading participant-events from
    offset 0 up to ``upto`` with the same step (what snapshots save), and the events read."""
    states: dict[str, ParticipantState] = {}
    read = 0
    async for record in read_partition(settings.bootstrap_servers, settings.topics.participant_events, partition):
        if record.offset >= upto:
            break
        read += 1
        handler.handle(record, states, replaying=True)
    return states, read


async def restore(
    settings: KafkaSettings, handler: RecordHandler, partition: int, committed: int | None
) -> tuple[dict[str, ParticipantState], int]:
    """A partition's state as of its committed offset: from snapshots, or rebuilt from the log
    when offsets were committed but no snapshot is there (the state topic was deleted) or a
    snapshot cannot be read."""
    try:
        states, read = await restore_snapshots(settings, partition)
    except snapshots.SnapshotError as e:
        log.warning("snapshots_unreadable", partition=partition, error=type(e).__name__)
        states, read = {}, 0
        if not committed:
            return states, read
    if read == 0 and committed:
        log.warning("snapshots_missing", partition=partition, committed_offset=committed)
        return await rebuild_from_log(settings, handler, partition, committed)
    return states, read
