"""The lines of a format 2 audit export and of a format 2 live checkpoint (docs/audit-format.md).

A format 2 export is: one header line, the record lines (partitions in ascending order, each in
offset order), one manifest line. Every line is the canonical JSON that :func:`dumps` writes
(keys sorted, no spaces, ASCII with ``\\uXXXX`` escapes), with exactly its kind's fields; a
reader refuses anything else, so no byte of a line can change without either changing what is
hashed or signed, or breaking the canonical form.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from services.ledger.chain_v2 import FORMAT, PartitionPosition
from services.ledger.export_fields import (
    ExportFormatError,
    _bytes,
    _check_fields,
    _digest,
    _int,
    _str,
)

HEADER = {"format": FORMAT, "kind": "header"}


@dataclass(frozen=True)
class RecordV2:
    """One Kafka record of a format 2 export: coordinates, timestamp and type, exact key, value and headers."""

    topic: str
    partition: int
    offset: int
    timestamp_type: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]
    chain: str


@dataclass(frozen=True)
class CheckpointV2:
    """A signed position of one partition's chain (written live to audit-checkpoints)."""

    topic: str
    position: PartitionPosition
    key_id: str
    signature: bytes


@dataclass(frozen=True)
class Manifest:
    """The signed end of a format 2 export: what it holds, partition by partition."""

    study: str
    topic: str
    partition_count: int
    positions: tuple[PartitionPosition, ...]
    key_id: str
    signature: bytes


LineV2 = RecordV2 | Manifest

_RECORD = {"kind", "topic", "partition", "offset", "timestamp_type", "timestamp", "key", "value", "headers", "chain"}
_CHECKPOINT = {"format", "kind", "topic", "partition", "first_offset", "last_offset", "count", "head", "key_id"}
_CHECKPOINT |= {"signature"}
_MANIFEST = {"format", "kind", "study", "topic", "partition_count", "partitions", "key_id", "signature"}
_POSITION = {"partition", "first_offset", "last_offset", "count", "head"}


def dumps(obj: dict[str, Any]) -> str:
    """The canonical JSON of a line: sorted keys, ``,`` and ``:`` without spaces, ASCII only."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def header_line() -> str:
    """The first line of a format 2 export."""
    return dumps(HEADER)


def record_line(r: RecordV2) -> str:
    """The line of a record."""
    return dumps(
        {
            "kind": "record",
            "topic": r.topic,
            "partition": r.partition,
            "offset": r.offset,
            "timestamp_type": r.timestamp_type,
            "timestamp": r.timestamp_ms,
            "key": _b64(r.key),
            "value": _b64(r.value),
            "headers": [[name, _b64(value)] for name, value in r.headers],
            "chain": r.chain,
        }
    )


def _position(p: PartitionPosition) -> dict[str, Any]:
    return {
        "partition": p.partition,
        "first_offset": p.first_offset,
        "last_offset": p.last_offset,
        "count": p.count,
        "head": p.head,
    }


def checkpoint_line(c: CheckpointV2) -> str:
    """The value of a live checkpoint record."""
    return dumps(
        {
            "format": FORMAT,
            "kind": "checkpoint",
            "topic": c.topic,
            **_position(c.position),
            "key_id": c.key_id,
            "signature": _b64(c.signature),
        }
    )


def manifest_line(m: Manifest) -> str:
    """The last line of a format 2 export."""
    return dumps(
        {
            "format": FORMAT,
            "kind": "manifest",
            "study": m.study,
            "topic": m.topic,
            "partition_count": m.partition_count,
            "partitions": [_position(p) for p in m.positions],
            "key_id": m.key_id,
            "signature": _b64(m.signature),
        }
    )


def parse_v2(text: str, number: int) -> RecordV2 | Manifest | CheckpointV2 | None:
    """Parse one format 2 line (None for the header line).

    Raises:
        ExportFormatError: not JSON, not one of the kinds, a field missing, extra or of the wrong
            type, or not in the canonical form.
    """
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportFormatError(number, f"not JSON ({e.msg})") from None
    if not isinstance(obj, dict):
        raise ExportFormatError(number, "not a JSON object")
    line = _parse(obj, number)
    if isinstance(line, RecordV2):
        canonical = record_line(line)
    elif isinstance(line, Manifest):
        canonical = manifest_line(line)
    elif isinstance(line, CheckpointV2):
        canonical = checkpoint_line(line)
    else:
        canonical = header_line()
    if canonical != text.rstrip("\n"):
        raise ExportFormatError(number, "not in the canonical form an export writes (changed by hand?)")
    return line


def _parse(obj: dict[str, Any], number: int) -> RecordV2 | Manifest | CheckpointV2 | None:
    kind = obj.get("kind")
    if kind == "header":
        _check_fields(obj, set(HEADER), number)
        if obj["format"] != FORMAT:
            raise ExportFormatError(number, f"format {str(obj['format'])[:20]} is not {FORMAT}")
        return None
    if kind == "record":
        _check_fields(obj, _RECORD, number)
        return RecordV2(
            topic=_str(obj, "topic", number),
            partition=_int(obj, "partition", number),
            offset=_int(obj, "offset", number),
            timestamp_type=_timestamp_type(obj, number),
            timestamp_ms=_int(obj, "timestamp", number, minimum=-1),
            key=_nullable_bytes(obj, "key", number),
            value=_nullable_bytes(obj, "value", number),
            headers=_headers(obj, number),
            chain=_digest(obj, "chain", number),
        )
    if kind == "checkpoint":
        _check_fields(obj, _CHECKPOINT, number)
        _check_format(obj, number)
        return CheckpointV2(
            _str(obj, "topic", number),
            _parse_position(obj, number),
            _digest(obj, "key_id", number),
            _bytes(obj, "signature", number),
        )
    if kind == "manifest":
        _check_fields(obj, _MANIFEST, number)
        _check_format(obj, number)
        entries = obj["partitions"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ExportFormatError(number, "partitions is not a list of objects")
        for entry in entries:
            _check_fields(entry, _POSITION, number)
        return Manifest(
            study=_str(obj, "study", number),
            topic=_str(obj, "topic", number),
            partition_count=_int(obj, "partition_count", number),
            positions=tuple(_parse_position(e, number) for e in entries),
            key_id=_digest(obj, "key_id", number),
            signature=_bytes(obj, "signature", number),
        )
    raise ExportFormatError(number, f"kind {str(kind)[:40]!r} is not header, record, checkpoint or manifest")


def _check_format(obj: dict[str, Any], number: int) -> None:
    if obj["format"] != FORMAT or type(obj["format"]) is not int:
        raise ExportFormatError(number, f"format {str(obj['format'])[:20]} is not {FORMAT}")


def _parse_position(obj: dict[str, Any], number: int) -> PartitionPosition:
    return PartitionPosition(
        partition=_int(obj, "partition", number),
        first_offset=_int(obj, "first_offset", number, minimum=-1),
        last_offset=_int(obj, "last_offset", number, minimum=-1),
        count=_int(obj, "count", number),
        head=_digest(obj, "head", number),
    )


def _timestamp_type(obj: dict[str, Any], number: int) -> int:
    value = obj["timestamp_type"]
    if type(value) is not int or value not in (-1, 0, 1):
        raise ExportFormatError(number, "timestamp_type is not -1, 0 or 1")
    return value


def _nullable_bytes(obj: dict[str, Any], name: str, number: int) -> bytes | None:
    return None if obj[name] is None else _bytes(obj, name, number)


def _headers(obj: dict[str, Any], number: int) -> tuple[tuple[str, bytes | None], ...]:
    raw = obj["headers"]
    if not isinstance(raw, list):
        raise ExportFormatError(number, "headers is not a list")
    headers = []
    for pair in raw:
        if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ExportFormatError(number, "a header is not a [name, base64 or null] pair")
        headers.append((pair[0], _nullable_bytes({"header value": pair[1]}, "header value", number)))
    return tuple(headers)
