"""The audit hash chain of each input partition, extended live as the rules service consumes.

Every N records of a partition, the batch transaction that consumes them also writes a signed
checkpoint (first and last offset, count, chain head: format 2, docs/audit-format.md) to
``audit-checkpoints``: the chain is committed
together with the offsets that consumed its records, so an export made later can be checked
against checkpoints written at the time (``trialguard audit verify --bootstrap-servers``). The
chain is the one ``trialguard export events`` computes (services/ledger/chain.py): over every
committed record in offset order, dead-lettered ones included. Format 1 checkpoints written
before the upgrade are not restored from (their heads follow format 1's chain): a partition
without a format 2 checkpoint is chained again from its start, once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiokafka import ConsumerRecord
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.kafka import KafkaSettings, read_partition, read_to_end
from services.ledger.chain_v2 import ChainV2
from services.ledger.export_format import ExportFormatError
from services.ledger.export_v2 import CheckpointV2, checkpoint_line, parse_v2
from services.ledger.keys import load_private_key
from services.ledger.signing_v2 import check_checkpoint, sign_checkpoint
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

    def extend(self, chain: ChainV2, records: list[ConsumerRecord[bytes, bytes]]) -> tuple[ChainV2, list[Outgoing]]:
        """The chain after ``records`` (a copy: the caller keeps it only once committed), and the
        checkpoint to write with them when a multiple of ``every`` was crossed."""
        grown = copy.copy(chain)
        for record in records:
            _append(grown, record)
        if grown.count // self.every == chain.count // self.every:
            return grown, []
        line = checkpoint_line(sign_checkpoint(grown, self.key))
        return grown, [Outgoing(self.topic, str(grown.partition).encode(), line.encode())]


def _append(chain: ChainV2, record: ConsumerRecord[bytes, bytes]) -> None:
    headers = [(name, value) for name, value in record.headers]
    chain.append(record.offset, record.timestamp_type, record.timestamp, record.key, record.value, headers)


async def restore_chain(
    settings: KafkaSettings, checkpointer: Checkpointer, partition: int, upto: int | None
) -> tuple[ChainV2, int]:
    """A partition's chain as of the committed offset ``upto``: from its latest checkpoint below
    ``upto`` (signed by this key), extended by re-reading the records after it; from offset 0 when
    there is none. Also the number of records re-read."""
    topic = settings.topics.participant_events
    chain = ChainV2(topic, partition)
    if not upto:
        return chain, 0
    latest = await _latest_checkpoint(settings, checkpointer, partition, upto)
    if latest is not None:
        p = latest.position
        chain = ChainV2(topic, partition, bytes.fromhex(p.head), p.count, p.first_offset, p.last_offset)
    read = 0
    async for record in read_partition(settings, topic, partition, start=chain.last_offset + 1):
        if record.offset >= upto:
            break
        _append(chain, record)
        read += 1
    return chain, read


async def _latest_checkpoint(
    settings: KafkaSettings, checkpointer: Checkpointer, partition: int, upto: int
) -> CheckpointV2 | None:
    latest: CheckpointV2 | None = None
    async for record in read_to_end(settings, checkpointer.topic):
        try:
            line = parse_v2((record.value or b"").decode("utf-8", "replace"), record.offset + 1)
        except ExportFormatError:
            continue  # format 1 (before the upgrade) or not a checkpoint
        if (
            isinstance(line, CheckpointV2)
            and line.topic == settings.topics.participant_events
            and line.position.partition == partition
            and line.position.last_offset < upto
            and check_checkpoint(line, checkpointer.key.public_key()) is None
            and (latest is None or line.position.count > latest.position.count)
        ):
            latest = line
    if latest is None:
        log.info("chain_rebuilt_from_start", partition=partition)
    return latest
