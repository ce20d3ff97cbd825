"""The audit export file, format 1: JSON lines of records and signed per-partition checkpoints.

Exports are written in format 2 now (:mod:`services.ledger.export_v2`, docs/audit-format.md);
format 1 is kept so that exports made before still read and verify under their own rules.

Format (one JSON object per line, UTF-8, ``\\n``-terminated):

* record line, one per Kafka record, in partition offset order::

    {"kind": "record", "topic": str, "partition": int, "offset": int, "timestamp": int (Kafka ms),
     "key": base64 | null, "value": base64, "chain": hex SHA-256}

  ``value`` is the base64 of the record's exact bytes: those bytes are what is hashed, so an
  export never re-encodes an event. ``chain`` is the partition's hash chain after this record
  (see :mod:`services.ledger.chain`).

* checkpoint line, one per exported partition, after every record line::

    {"kind": "checkpoint", "topic": str, "partition": int, "last_offset": int (-1: empty),
     "count": int, "head": hex SHA-256, "key_id": hex SHA-256 of the raw Ed25519 public key,
     "signature": base64 Ed25519 signature}

  The signature covers :func:`services.ledger.chain.checkpoint_message` of the other fields.

Each line must be exactly as :func:`record_line` / :func:`checkpoint_line` write it (keys
sorted, no spaces, canonical base64), and carries no other fields: then every changed byte of a
line either changes what the chain covers or breaks the canonical form, and the reader refuses
the latter.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.ledger.export_fields import (
    ExportFormatError as ExportFormatError,  # re-exported: readers of format 1 catch it from here
)
from services.ledger.export_fields import (
    _bytes,
    _check_fields,
    _digest,
    _int,
    _str,
)
from services.ledger.export_v2 import RecordV2, header_line, parse_v2


@dataclass(frozen=True)
class ExportedRecord:
    """One Kafka record as exported: its coordinates, its exact bytes and the chain after it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    chain: str


@dataclass(frozen=True)
class ExportedCheckpoint:
    """The signed end of one partition's chain in an export."""

    topic: str
    partition: int
    last_offset: int
    count: int
    head: str
    key_id: str
    signature: bytes


Line = ExportedRecord | ExportedCheckpoint

_RECORD_FIELDS = {"kind", "topic", "partition", "offset", "timestamp", "key", "value", "chain"}
_CHECKPOINT_FIELDS = {"kind", "topic", "partition", "last_offset", "count", "head", "key_id", "signature"}


def record_line(record: ExportedRecord) -> str:
    """The JSON line (without newline) of a record; keys sorted so the same record gives the same line."""
    return json.dumps(
        {
            "kind": "record",
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": record.timestamp_ms,
            "key": None if record.key is None else _b64(record.key),
            "value": _b64(record.value),
            "chain": record.chain,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def checkpoint_line(checkpoint: ExportedCheckpoint) -> str:
    """The JSON line (without newline) of a checkpoint."""
    return json.dumps(
        {
            "kind": "checkpoint",
            "topic": checkpoint.topic,
            "partition": checkpoint.partition,
            "last_offset": checkpoint.last_offset,
            "count": checkpoint.count,
            "head": checkpoint.head,
            "key_id": checkpoint.key_id,
            "signature": _b64(checkpoint.signature),
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def parse_line(text: str, number: int) -> Line:
    """Parse one line of an export file.

    Args:
        text: the line, with or without its newline.
        number: its 1-based line number, for the error.

    Raises:
        ExportFormatError: the line is not a well-formed record or checkpoint line.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportFormatError(number, f"not JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ExportFormatError(number, "not a JSON object")
    line = _parse_object(obj, number)
    # Non-canonical spellings (spaces, escapes, base64 padding bits) decode to the same values,
    # so the chain alone would not notice a byte changed there.
    canonical = record_line(line) if isinstance(line, ExportedRecord) else checkpoint_line(line)
    if canonical != text.rstrip("\n"):
        raise ExportFormatError(number, "not in the canonical form an export writes (changed by hand?)")
    return line


def _parse_object(obj: dict[str, Any], number: int) -> Line:
    kind = obj.get("kind")
    if kind == "record":
        _check_fields(obj, _RECORD_FIELDS, number)
        key = obj["key"]
        return ExportedRecord(
            topic=_str(obj, "topic", number),
            partition=_int(obj, "partition", number),
            offset=_int(obj, "offset", number),
            timestamp_ms=_int(obj, "timestamp", number, minimum=-1),
            key=None if key is None else _bytes(obj, "key", number),
            value=_bytes(obj, "value", number),
            chain=_digest(obj, "chain", number),
        )
    if kind == "checkpoint":
        _check_fields(obj, _CHECKPOINT_FIELDS, number)
        return ExportedCheckpoint(
            topic=_str(obj, "topic", number),
            partition=_int(obj, "partition", number),
            last_offset=_int(obj, "last_offset", number, minimum=-1),
            count=_int(obj, "count", number),
            head=_digest(obj, "head", number),
            key_id=_digest(obj, "key_id", number),
            signature=_bytes(obj, "signature", number),
        )
    raise ExportFormatError(number, f"kind {str(kind)[:40]!r} is neither 'record' nor 'checkpoint'")


def read_lines(path: Path) -> Iterator[tuple[int, Line]]:
    """Every line of an export file with its 1-based line number, in file order.

    Raises:
        ExportFormatError: a line is malformed (an empty line is malformed too: nothing writes one).
        OSError: the file cannot be read.
    """
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                raise ExportFormatError(number, "the last line has no newline (truncated file?)")
            try:
                text = raw[:-1].decode("utf-8")
            except UnicodeDecodeError:
                raise ExportFormatError(number, "not UTF-8") from None
            yield number, parse_line(text, number)


def read_export(path: Path) -> Iterator[ExportedRecord]:
    """The record lines of an export file (format 1 or 2) in file order; checkpoint, header and
    manifest lines are skipped. A format 2 null value reads as empty bytes.

    This reads the records; it does not verify them (see :mod:`services.audit.verify`).

    Raises:
        ExportFormatError: a line is malformed; the error names its line number.
        OSError: the file cannot be read.
    """
    for _, line in _numbered_records(path):
        yield line


def _numbered_records(path: Path) -> Iterator[tuple[int, ExportedRecord]]:
    with path.open("rb") as f:
        v2 = f.readline().rstrip(b"\n") == header_line().encode()
    if not v2:
        for number, line in read_lines(path):
            if isinstance(line, ExportedRecord):
                yield number, line
        return
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                raise ExportFormatError(number, "the last line has no newline (truncated file?)")
            r = parse_v2(raw.decode("utf-8", "replace"), number)
            if isinstance(r, RecordV2):
                yield (
                    number,
                    ExportedRecord(r.topic, r.partition, r.offset, r.timestamp_ms, r.key, r.value or b"", r.chain),
                )


def read_checkpoints(path: Path) -> list[ExportedCheckpoint]:
    """The checkpoint lines of an export file in file order (unverified)."""
    return [line for _, line in read_lines(path) if isinstance(line, ExportedCheckpoint)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_export(path: Path) -> bool:
    """Whether ``path`` is an audit export (its first line is a record or checkpoint line) rather
    than plain contract-v1 JSON lines."""
    with path.open("rb") as f:
        for raw in f:
            if raw.strip():
                try:
                    first = json.loads(raw)
                except ValueError:
                    return False
                return isinstance(first, dict) and first.get("kind") in ("header", "record", "checkpoint")
    return False


def participant_event_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, original bytes) of each participant-events record of an export, in file
    order (an export holds one topic's partitions one after another: each participant's events
    stay in log order).

    Raises:
        ExportFormatError: a malformed line.
    """
    for number, line in _numbered_records(path):
        if line.topic.endswith(".participant-events"):
            yield number, line.value
