"""The hash chain over a partition's records, and the bytes a checkpoint signature covers. Pure.

Per partition, ``h_0 = SHA-256(b"trialguard:" + topic + b":" + str(partition))`` (the genesis
value: it ties a chain to its topic and partition, so records of one partition cannot pass as
another's), and ``h_n = SHA-256(h_{n-1} || encode_record(record n))``: every record, in the order
the partition holds them. The chain follows record order, not offsets: transaction markers take
offsets too, so a partition's offsets have gaps that are no tampering.

A record is encoded as length-prefixed binary, big-endian::

    u32 len(topic) | topic (UTF-8) | u32 partition | i64 offset | i64 timestamp (ms)
    | u8 0 (no key)  or  u8 1 | u32 len(key) | key
    | u32 len(value) | value

Why binary rather than canonical JSON: every field has exactly one encoding without a JSON
canonicalization spec to agree on (number spellings, escapes, key order), the value is hashed
as its exact bytes with no base64 step, and the format is a dozen lines to reimplement in any
language an auditor picks. The length prefixes make it unambiguous: no two different records
encode to the same bytes.

A checkpoint signs :func:`checkpoint_message`, encoded the same way after a domain tag so a
signature over one kind of message can never be replayed as another.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

CHECKPOINT_TAG = b"trialguard-audit-checkpoint/v1\n"


def genesis(topic: str, partition: int) -> bytes:
    """``h_0`` of a partition's chain: SHA-256 of ``trialguard:<topic>:<partition>``."""
    return hashlib.sha256(f"trialguard:{topic}:{partition}".encode()).digest()


def _sized(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def encode_record(topic: str, partition: int, offset: int, timestamp_ms: int, key: bytes | None, value: bytes) -> bytes:
    """The canonical bytes of one record (see the module docstring)."""
    key_part = b"\x00" if key is None else b"\x01" + _sized(key)
    return b"".join(
        (
            _sized(topic.encode()),
            struct.pack(">Iqq", partition, offset, timestamp_ms),
            key_part,
            _sized(value),
        )
    )


def link(previous: bytes, record: bytes) -> bytes:
    """``h_n`` from ``h_{n-1}`` and the canonical bytes of record n."""
    return hashlib.sha256(previous + record).digest()


@dataclass
class Chain:
    """A partition's chain as it grows, record by record.

    Attributes:
        topic: the topic.
        partition: the partition.
        head: the latest ``h_n`` (``h_0`` before any record).
        count: records chained so far.
        last_offset: offset of the latest record, -1 before any.
    """

    topic: str
    partition: int
    head: bytes = b""
    count: int = 0
    last_offset: int = -1

    def __post_init__(self) -> None:
        if not self.head:
            self.head = genesis(self.topic, self.partition)

    def append(self, offset: int, timestamp_ms: int, key: bytes | None, value: bytes) -> bytes:
        """Chain the next record of the partition; return the new head.

        Raises:
            ValueError: ``offset`` does not follow the previous record's (out of order or repeated).
        """
        if offset <= self.last_offset:
            raise ValueError(f"offset {offset} does not follow {self.last_offset}")
        self.head = link(self.head, encode_record(self.topic, self.partition, offset, timestamp_ms, key, value))
        self.count += 1
        self.last_offset = offset
        return self.head

    def message(self, key_id: str) -> bytes:
        """The bytes a checkpoint of the chain as it stands signs (see :func:`checkpoint_message`)."""
        return checkpoint_message(self.topic, self.partition, self.last_offset, self.count, self.head.hex(), key_id)


def checkpoint_message(topic: str, partition: int, last_offset: int, count: int, head: str, key_id: str) -> bytes:
    """The bytes an Ed25519 checkpoint signature covers.

    ``CHECKPOINT_TAG | u32 len(topic) | topic | u32 partition | i64 last_offset | u64 count | head
    (32 bytes) | key_id (32 bytes)``. The key id is signed too, so a signature cannot be
    re-labelled as another key's.

    Args:
        head: the chain head, 64 hex digits.
        key_id: hex SHA-256 of the raw public key, 64 hex digits.
    """
    return b"".join(
        (
            CHECKPOINT_TAG,
            _sized(topic.encode()),
            struct.pack(">IqQ", partition, last_offset, count),
            bytes.fromhex(head),
            bytes.fromhex(key_id),
        )
    )
