"""Verifying a format 2 export (docs/audit-format.md): header, records, signed manifest.

The manifest's signature is checked before anything it claims is believed; then every partition
it names must be in the file, whole, in order: a dropped partition, a dropped range of records or
a missing manifest is named, not only detected.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.verified import VerificationError, Verified
from services.ledger.chain import Chain
from services.ledger.chain_v2 import ChainV2, PartitionPosition
from services.ledger.export_format import ExportFormatError
from services.ledger.export_v2 import CheckpointV2, Manifest, RecordV2, header_line, parse_v2
from services.ledger.signing_v2 import check_manifest


def is_v2(path: Path) -> bool:
    """Whether the file's first line is the format 2 header."""
    with path.open("rb") as f:
        return f.readline().rstrip(b"\n") == header_line().encode()


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """The file's lines one at a time (an export can be larger than memory), numbered from 1."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if not raw.endswith(b"\n"):
                raise VerificationError(number, "the last line has no newline (truncated file?)")
            try:
                yield number, raw[:-1].decode("utf-8")
            except UnicodeDecodeError:
                raise VerificationError(number, "not UTF-8") from None


def check_export_v2(path: Path, public_key: Ed25519PublicKey) -> Verified:
    """Verify a format 2 export.

    Raises:
        VerificationError: the first line that breaks, or what is missing.
        OSError: the file cannot be read.
    """
    result = Verified(format=2)
    chains: dict[int, ChainV2] = {}
    legacy: dict[int, Chain] = {}
    current: ChainV2 | None = None
    manifest: tuple[int, Manifest] | None = None
    number = 0
    try:
        for number, text in _lines(path):
            line = parse_v2(text, number)
            if number == 1:
                if line is not None:
                    raise VerificationError(1, "the first line is not the format 2 header")
                continue
            if manifest is not None:
                raise VerificationError(number, "a line after the manifest (the manifest is the last line)")
            if isinstance(line, RecordV2):
                current = _check_record(line, number, current, chains, legacy, result)
            elif isinstance(line, Manifest):
                manifest = (number, line)
            elif isinstance(line, CheckpointV2):
                raise VerificationError(number, "a checkpoint line: format 2 exports end with a manifest instead")
            else:
                raise VerificationError(number, "a second header line")
    except ExportFormatError as e:
        raise VerificationError(e.line, e.reason) from None
    end = number + 1
    if manifest is None:
        raise VerificationError(end, "the file ends without its signed manifest (incomplete or truncated export)")
    _check_manifest(*manifest, chains, public_key)
    result.manifest = manifest[1]
    for partition in range(manifest[1].partition_count):
        where = (manifest[1].topic, partition)
        result.heads.setdefault(where, [])
        result.heads_v2.setdefault(where, [])
        result.offsets.setdefault(where, [])
    return result


def _check_record(
    record: RecordV2,
    number: int,
    current: ChainV2 | None,
    chains: dict[int, ChainV2],
    legacy: dict[int, Chain],
    result: Verified,
) -> ChainV2:
    if current is not None and record.topic != current.topic:
        raise VerificationError(number, f"topic {record.topic[:80]!r} differs from the export's {current.topic!r}")
    if current is None or current.partition != record.partition:
        if record.partition in chains:
            raise VerificationError(number, f"partition {record.partition} resumes after another partition's records")
        if current is not None and record.partition < current.partition:
            raise VerificationError(number, f"partition {record.partition} comes after partition {current.partition}")
        current = chains[record.partition] = ChainV2(record.topic, record.partition)
        legacy[record.partition] = Chain(record.topic, record.partition)
    if record.offset <= current.last_offset:
        raise VerificationError(number, f"offset {record.offset} does not follow offset {current.last_offset}")
    head = current.append(
        record.offset, record.timestamp_type, record.timestamp_ms, record.key, record.value, record.headers
    ).hex()
    if head != record.chain:
        raise VerificationError(
            number,
            f"chain value does not match this record and the ones before it in partition {record.partition} "
            "(this line was changed, or a line of the partition before it was changed, removed, inserted or moved)",
        )
    where = (record.topic, record.partition)
    # Format 1's chain of the same records, for live checkpoints written before an upgrade.
    v1 = legacy[record.partition].append(record.offset, record.timestamp_ms, record.key, record.value or b"")
    result.heads.setdefault(where, []).append(v1.hex())
    result.heads_v2.setdefault(where, []).append(head)
    result.offsets.setdefault(where, []).append(record.offset)
    result.records += 1
    return current


def _check_manifest(number: int, manifest: Manifest, chains: dict[int, ChainV2], public_key: Ed25519PublicKey) -> None:
    if (why := check_manifest(manifest, public_key)) is not None:
        raise VerificationError(number, f"manifest: {why}")
    if [p.partition for p in manifest.positions] != list(range(manifest.partition_count)):
        raise VerificationError(number, "manifest: its partitions are not 0 to partition_count - 1 in order")
    for chain in chains.values():
        if chain.topic != manifest.topic:
            raise VerificationError(
                number, f"manifest: topic {manifest.topic!r}, but the records are of {chain.topic!r}"
            )
        if chain.partition >= manifest.partition_count:
            raise VerificationError(number, f"manifest: no partition {chain.partition}, but the file has its records")
    for signed in manifest.positions:
        chain = chains.get(signed.partition, ChainV2(manifest.topic, signed.partition))
        if (missing := _missing(signed, chain.position())) is not None:
            raise VerificationError(number, f"partition {signed.partition}: {missing}")


def _missing(signed: PartitionPosition, found: PartitionPosition) -> str | None:
    """What the file lacks of a partition the manifest signs, or None when it is all there."""
    if signed == found:
        return None
    extent = f"{signed.count:,} records, offsets {signed.first_offset} to {signed.last_offset}"
    if found.count == 0 and signed.count:
        return f"missing from the file (the manifest signs {extent})"
    if found.first_offset > signed.first_offset:
        return f"records before offset {found.first_offset} are missing (the manifest signs {extent})"
    if 0 <= found.last_offset < signed.last_offset:
        return f"records after offset {found.last_offset} are missing (the manifest signs {extent})"
    if found.count == signed.count:
        return f"a record differs from what the manifest signs (same count, different head; it signs {extent})"
    return f"the file's records differ from what the manifest signs ({found.count:,} records found; it signs {extent})"
