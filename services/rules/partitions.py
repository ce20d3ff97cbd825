"""What one instance holds for an input partition it owns.

State is derived: snapshot rounds on the compacted participant-state topic plus the records
after the last round restore it quickly (``rounds``), and the participant-events log itself
rebuilds it when snapshots are missing or unreadable.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from protocol import ParticipantState
from services.audit.chain import Chain
from services.rules.records import Record


@dataclass
class OwnedPartition:
    """An assigned input partition: its transactional producer, its participants' state, and
    the next offset to commit.

    The consumer loop adds fetched records to ``pending`` and sets ``wake``; the partition's own
    worker task takes them a batch at a time, each in one transaction, so that a partition never
    waits for another's transaction. ``lock`` is held by the partition's transaction from begin
    to commit or abort, so that a revocation waits for it before closing the producer.
    ``closing`` stops new transactions (and the worker). Records below ``next_offset`` were
    committed already (fetched again after a re-open) and are skipped.
    """

    number: int
    """The partition's number."""
    producer: AIOKafkaProducer
    states: dict[str, ParticipantState] = field(default_factory=dict)
    next_offset: int = 0
    chain: Chain | None = None
    """The audit hash chain as of ``next_offset`` (None when no checkpoints are written)."""
    changed: set[str] = field(default_factory=set)
    """Participants changed since the last committed snapshot round: the next round writes them."""
    round_offset: int | None = None
    """The input offset of the last committed snapshot round (None: the next batch writes one)."""
    pending: list[Record] = field(default_factory=list)
    """Records fetched and not yet in a transaction, in offset order."""
    fetched: int = -1
    """The offset after the last record added to ``pending`` (-1: none yet)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False

    def add(self, records: list[Record]) -> None:
        """Records fetched for this partition, for its worker (any already added or committed skipped)."""
        start = max(self.next_offset, self.fetched)
        fresh = records if records[0].offset >= start else [r for r in records if r.offset >= start]
        if fresh:
            self.pending += fresh
            self.fetched = fresh[-1].offset + 1
            self.wake.set()

    def take(self, most: int) -> list[Record]:
        """The next batch for a transaction: at most ``most`` of the pending records."""
        batch = self.pending[:most]
        del self.pending[:most]
        return batch

    def round_due(self, end: int, every: int) -> bool:
        """Whether the batch that commits offset ``end`` writes a snapshot round."""
        return self.round_offset is None or end - self.round_offset >= every
