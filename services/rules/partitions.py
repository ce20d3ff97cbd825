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
    changed: set[str] = field(default_factory=set)
    """Participants changed since the last committed snapshot round: the next round writes them."""
    round_offset: int | None = None
    """The input offset of the last committed snapshot round (None: the next batch writes one)."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False

    def round_due(self, end: int, every: int) -> bool:
        """Whether the batch that commits offset ``end`` writes a snapshot round."""
        return self.round_offset is None or end - self.round_offset >= every
