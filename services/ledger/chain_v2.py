"""Format 2 of the audit hash chain: the canonical record, the chain, and the bytes that format 2
checkpoints and manifests sign. Pure. The specification is docs/audit-format.md; this module
follows it section by section (format 1 stays in :mod:`services.ledger.chain` for old exports).

What changed from format 1, and why:

- a null key or value is encoded differently from an empty one (format 1 exported a null value as
  ``""`` and hashed it as empty, so the chain could not tell them apart);
- the Kafka timestamp type and every record header are covered (format 1 left them outside the
  chain, so a ``CreateTime`` could pass as a ``LogAppendTime`` and a header could be added);
- the genesis value names the format, so a format 2 chain can never be passed off as format 1's;
- a checkpoint also signs the partition's first offset, and an export ends with one signed
  manifest of every partition (see :func:`manifest_message`), so a dropped partition or a
  dropped range of records breaks a signature.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

FORMAT = 2
GENESIS_TAG = b"trialguard-audit-chain/v2\n"
CHECKPOINT_TAG = b"trialguard-audit-checkpoint/v2\n"
MANIFEST_TAG = b"trialguard-audit-manifest/v2\n"

NO_TIMESTAMP_TYPE = -1
"""Kafka's timestamp type of a record with no timestamp (an event from a plain log); 0 is
CreateTime (the producer's clock), 1 LogAppendTime (the broker's)."""

Headers = Sequence[tuple[str, bytes | None]]


def _sized(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _optional(data: bytes | None) -> bytes:
    """``u8 0`` for null; ``u8 1 | u32 length | bytes`` otherwise: null and empty differ."""
    return b"\x00" if data is None else b"\x01" + _sized(data)


def genesis(topic: str, partition: int) -> bytes:
    """``h_0``: SHA-256 of the format tag, the topic (length-prefixed) and the partition (u32)."""
    return hashlib.sha256(GENESIS_TAG + _sized(topic.encode()) + struct.pack(">I", partition)).digest()


def encode_record(
    topic: str,
    partition: int,
    offset: int,
    timestamp_type: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Headers,
) -> bytes:
    """The canonical bytes of one record, big-endian::

        u32 len(topic) | topic | u32 partition | i64 offset | i8 timestamp_type | i64 timestamp
        | opt(key) | opt(value) | u32 header count | per header: u32 len(name) | name | opt(value)

    where ``opt(x)`` is ``u8 0`` for null and ``u8 1 | u32 len(x) | x`` otherwise.
    """
    parts = [
        _sized(topic.encode()),
        struct.pack(">Iqbq", partition, offset, timestamp_type, timestamp_ms),
        _optional(key),
        _optional(value),
        struct.pack(">I", len(headers)),
    ]
    for name, header_value in headers:
        parts += [_sized(name.encode()), _optional(header_value)]
    return b"".join(parts)


def link(previous: bytes, record: bytes) -> bytes:
    """``h_n = SHA-256(h_{n-1} (32 raw bytes) || canonical record n)``."""
    return hashlib.sha256(previous + record).digest()


@dataclass
class ChainV2:
    """A partition's format 2 chain as it grows.

    Attributes:
        topic: the topic.
        partition: the partition.
        head: the latest ``h_n`` (``h_0`` before any record).
        count: records chained so far.
        first_offset: offset of the first record, -1 before any.
        last_offset: offset of the latest record, -1 before any.
        heads: the head after each record (kept only when ``keep_heads``), to compare checkpoints with.
    """

    topic: str
    partition: int
    head: bytes = b""
    count: int = 0
    first_offset: int = -1
    last_offset: int = -1
    keep_heads: bool = False
    heads: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.head:
            self.head = genesis(self.topic, self.partition)

    def append(
        self,
        offset: int,
        timestamp_type: int,
        timestamp_ms: int,
        key: bytes | None,
        value: bytes | None,
        headers: Headers = (),
    ) -> bytes:
        """Chain the next record; return the new head.

        Raises:
            ValueError: ``offset`` does not follow the previous record's.
        """
        if offset <= self.last_offset:
            raise ValueError(f"offset {offset} does not follow {self.last_offset}")
        record = encode_record(self.topic, self.partition, offset, timestamp_type, timestamp_ms, key, value, headers)
        self.head = link(self.head, record)
        if self.count == 0:
            self.first_offset = offset
        self.count += 1
        self.last_offset = offset
        if self.keep_heads:
            self.heads.append(self.head)
        return self.head

    def position(self) -> PartitionPosition:
        """Where the chain stands."""
        return PartitionPosition(self.partition, self.first_offset, self.last_offset, self.count, self.head.hex())


@dataclass(frozen=True)
class PartitionPosition:
    """A partition's extent and chain head, as a checkpoint or a manifest signs it.

    Attributes:
        partition: the partition.
        first_offset: offset of its first record (-1: no record).
        last_offset: offset of its last record (-1: no record).
        count: records.
        head: chain head after the last record, 64 hex digits (``h_0`` when empty).
    """

    partition: int
    first_offset: int
    last_offset: int
    count: int
    head: str

    def encode(self) -> bytes:
        """``u32 partition | i64 first_offset | i64 last_offset | u64 count | head (32 bytes)``."""
        return struct.pack(">IqqQ", self.partition, self.first_offset, self.last_offset, self.count) + bytes.fromhex(
            self.head
        )


def checkpoint_message(topic: str, position: PartitionPosition, key_id: str) -> bytes:
    """The bytes a format 2 checkpoint signature covers:
    ``CHECKPOINT_TAG | u32 len(topic) | topic | position | key_id (32 bytes)``."""
    return CHECKPOINT_TAG + _sized(topic.encode()) + position.encode() + bytes.fromhex(key_id)


def manifest_message(
    study: str, topic: str, partition_count: int, positions: Sequence[PartitionPosition], key_id: str
) -> bytes:
    """The bytes a manifest signature covers: ``MANIFEST_TAG | u32 len(study) | study | u32 len(topic)
    | topic | u32 partition_count | u32 len(positions) | each position in order | key_id (32 bytes)``."""
    return b"".join(
        (
            MANIFEST_TAG,
            _sized(study.encode()),
            _sized(topic.encode()),
            struct.pack(">II", partition_count, len(positions)),
            *(p.encode() for p in positions),
            bytes.fromhex(key_id),
        )
    )
