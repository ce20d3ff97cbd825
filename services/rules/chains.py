"""The audit hash chain of each input partition, extended live as the rules service consumes.

Every N records of a partition, the batch transaction that consumes them also writes a signed
checkpoint (last offset, count, chain head) to ``audit-checkpoints``: the chain is committed
together with the offsets that consumed its records, so an export made later can be checked
against checkpoints written at the time (``trialguard audit verify --bootstrap-servers``). The
chain is the one ``trialguard export events`` computes (services/ledger/chain.py): over every
committed record in offset order, dead-lettered ones included.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kafka import KafkaSettings, read_partition, read_to_end
from services.ledger.chain import Chain
from services.ledger.export_format import ExportedCheckpoint, ExportFormatError, checkpoint_line, parse_line
from services.ledger.keys import key_id, load_private_key
from services.ledger.signatures import check_signature, sign
from services.rules.records import Outgoing

log = structlog.get_logger("trialguard.rules.chains")


@dataclass(frozen=True)
class Checkpointer:
    """Signs a partition's chain every ``every`` records, into ``topic``.

    Args:
        key: the Ed25519 key that signs (``trialguard audit keygen``).
        every: records of a partition between two checkpoints.
        topic: the audit-checkpoints topic.
    """

    key: Ed25519PrivateKey
    every: int
    topic: str

    @classmethod
    def from_file(cls, path: Path, every: int, topic: str) -> Checkpointer:
        """Raises: KeyFileError naming the file when it cannot be read as an Ed25519 key."""
        if every < 1:
            raise ValueError(f"checkpoint every {every} records: must be at least 1")
        return cls(load_private_key(path), every, topic)

    def extend(self, chain: Chain, records: list[ConsumerRecord[bytes, bytes]]) -> tuple[Chain, list[Outgoing]]:
        """The chain after ``records`` (a copy: the caller keeps it only once committed), and the
        checkpoint to write with them when a multiple of ``every`` was crossed."""
        grown = copy.copy(chain)
        for record in records:
            grown.append(record.offset, record.timestamp, record.key, record.value or b"")
        if grown.count // self.every == chain.count // self.every:
            return grown, []
        line = checkpoint_line(sign(grown, self.key))
        return grown, [Outgoing(self.topic, str(grown.partition).encode(), line.encode())]


async def restore_chain(
    settings: KafkaSettings, checkpointer: Checkpointer, partition: int, upto: int | None
) -> tuple[Chain, int]:
    """A partition's chain as of the committed offset ``upto``: from its latest checkpoint below
    ``upto`` (signed by this key), extended by re-reading the records after it; from offset 0 when
    there is none. Also the number of records re-read."""
    topic = settings.topics.participant_events
    chain = Chain(topic, partition)
    if not upto:
        return chain, 0
    latest = await _latest_checkpoint(settings, checkpointer, partition, upto)
    if latest is not None:
        chain = Chain(topic, partition, bytes.fromhex(latest.head), latest.count, latest.last_offset)
    read = 0
    async for record in read_partition(settings, topic, partition, start=chain.last_offset + 1):
        if record.offset >= upto:
            break
        chain.append(record.offset, record.timestamp, record.key, record.value or b"")
        read += 1
    return chain, read


async def _latest_checkpoint(
    settings: KafkaSettings, checkpointer: Checkpointer, partition: int, upto: int
) -> ExportedCheckpoint | None:
    kid = key_id(checkpointer.key.public_key())
    latest: ExportedCheckpoint | None = None
    async for record in read_to_end(settings, checkpointer.topic):
        try:
            line = parse_line((record.value or b"").decode("utf-8", "replace"), record.offset + 1)
        except ExportFormatError:
            continue
        if (
            isinstance(line, ExportedCheckpoint)
            and line.topic == settings.topics.participant_events
            and line.partition == partition
            and line.last_offset < upto
            and check_signature(line, checkpointer.key.public_key(), kid) is None
            and (latest is None or line.count > latest.count)
        ):
            latest = line
    if latest is None:
        log.info("chain_rebuilt_from_start", partition=partition)
    return latest
