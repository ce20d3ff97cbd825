"""``trialguard export events``: participant-events as a signed, hash-chained export file.

Partitions are written one after another, in ascending order, each in offset order, then one
signed checkpoint per partition (see :mod:`services.ledger.export_format`). One partition at a
time rather than interleaved by timestamp: the chain is per partition, the verifier then needs
one chain in memory at a time, and the file's order is fully determined (a verifier can refuse
any other order, so swapping lines across partitions is caught too).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import IO, Any

import structlog
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.export_log import export_log
from services.audit.export_writer import ExportWriter, resign_v2
from services.audit.verify_v2 import is_v2
from services.files import atomic_text
from services.kafka import KafkaSettings, add_kafka_args, partition_ids, read_partition, settings_from_args
from services.ledger.chain import Chain
from services.ledger.export_format import (
    ExportedCheckpoint,
    ExportedRecord,
    ExportFormatError,
    checkpoint_line,
    is_export,
    read_lines,
    record_line,
)
from services.ledger.export_v2 import Manifest
from services.ledger.keys import KeyFileError, load_private_key
from services.ledger.signatures import sign

log = structlog.get_logger("trialguard.audit.export")

PROGRESS_SECONDS = 2.0


class ExportError(Exception):
    """The export cannot be made (the topic does not exist)."""


async def export_events(
    settings: KafkaSettings, out: Path, private_key: Ed25519PrivateKey, progress: IO[str] | None = None
) -> Manifest:
    """Export participant-events from its start to its current end (committed records only) to
    ``out``, in format 2 (docs/audit-format.md): every record with its timestamp type, key, value
    and headers (null kept apart from empty), then the signed manifest of every partition.

    The file appears complete or not at all.

    Returns:
        The manifest written.

    Raises:
        ExportError: participant-events does not exist.
        KafkaError: the broker failed.
        OSError: the file cannot be written.
    """
    topic = settings.topics.participant_events
    partitions = await partition_ids(settings, topic)
    if not partitions:
        raise ExportError(f"topic {topic} does not exist (or has no partitions)")
    last_report = time.monotonic()
    with atomic_text(out) as f:
        writer = ExportWriter(f, settings.study_id, topic)
        for partition in partitions:
            writer.partition(partition)
            async for record in read_partition(settings, topic, partition):
                headers = [(name, value) for name, value in record.headers]
                writer.record(record.offset, record.timestamp_type, record.timestamp, record.key, record.value, headers)
                if progress is not None and time.monotonic() - last_report >= PROGRESS_SECONDS:
                    last_report = time.monotonic()
                    print(f"exported {writer.records:,} records (partition {partition})", file=progress, flush=True)
        manifest = writer.finish(len(partitions), private_key)
    log.info("events exported", topic=topic, records=writer.records, partitions=len(partitions))
    return manifest


def reexport(source: Path, out: Path, private_key: Ed25519PrivateKey) -> list[ExportedCheckpoint]:
    """Sign an existing format 1 export again with another key (offline: a key rotation, or a copy for an
    auditor who holds another key), after checking every record's chain value.

    Raises:
        ExportFormatError: a malformed line, or a record whose chain value does not follow from
            the records before it (a changed file is never signed again).
        OSError: a file cannot be read or written.
    """
    chains: dict[tuple[str, int], Chain] = {}
    with atomic_text(out) as f:
        for number, line in read_lines(source):
            if not isinstance(line, ExportedRecord):
                continue
            chain = chains.setdefault((line.topic, line.partition), Chain(line.topic, line.partition))
            try:
                head = chain.append(line.offset, line.timestamp_ms, line.key, line.value)
            except ValueError as e:
                raise ExportFormatError(number, str(e)) from None
            if head.hex() != line.chain:
                raise ExportFormatError(number, "chain value does not follow from the records before it")
            f.write(record_line(line) + "\n")
        checkpoints = [sign(chain, private_key) for _, chain in sorted(chains.items())]
        for checkpoint in checkpoints:
            f.write(checkpoint_line(checkpoint) + "\n")
    return checkpoints


async def _export(args: argparse.Namespace) -> int:
    try:
        private_key = load_private_key(Path(args.key))
    except KeyFileError as e:
        print(f"trialguard export events: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    settings = settings_from_args(args)
    try:
        summary = await _write(args, settings, out, private_key)
    except ExportFormatError as e:
        print(f"trialguard export events: {args.events}:{e.line}: {e.reason}", file=sys.stderr)
        return 1
    except ExportError as e:
        print(f"trialguard export events: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"trialguard export events: {e.filename or out}: {e.strerror}", file=sys.stderr)
        return 2
    except KafkaError as e:
        print(f"trialguard export events: Kafka error: {type(e).__name__}", file=sys.stderr)
        return 1
    print(summary, file=sys.stderr)
    return 0


async def _write(args: argparse.Namespace, settings: KafkaSettings, out: Path, private_key: Ed25519PrivateKey) -> str:
    """Make the export the arguments ask for; a one-line summary of it."""
    if args.events is None:
        manifest = await export_events(settings, out, private_key, progress=sys.stderr)
    else:
        source = Path(args.events)
        if is_v2(source):
            manifest = resign_v2(source, out, private_key)
        elif is_export(source):
            checkpoints = reexport(source, out, private_key)
            records = sum(c.count for c in checkpoints)
            signed = f"; checkpoints signed by key {checkpoints[0].key_id}" if checkpoints else ""
            return f"signed {records:,} records of {len(checkpoints)} partitions again to {out} (format 1){signed}"
        else:
            manifest = export_log(source, out, settings.study_id, settings.topics.participant_events, private_key)
    records = sum(p.count for p in manifest.positions)
    return (
        f"exported {records:,} records of {len(manifest.positions)} partitions to {out} (format 2); "
        f"manifest signed by key {manifest.key_id}"
    )


def add_commands(audit: argparse._SubParsersAction[Any], export: argparse._SubParsersAction[Any]) -> None:
    """Register ``trialguard export events``."""
    del audit
    events = export.add_parser(
        "events",
        help="export participant-events as a hash-chained file with a signed manifest",
        description="Read participant-events from offset 0 to its current end (committed records only) and "
        "write every record as a JSON line with its exact bytes (base64) and its partition's hash chain value, "
        "partitions one after another in offset order, then a manifest of every partition signed with the "
        "Ed25519 key KEYFILE (see `trialguard audit keygen`). The file is written complete or not at all; "
        "`trialguard audit verify` checks it; the format is specified in docs/audit-format.md. "
        "Exit status: 0 written, 1 Kafka error or a bad line of LOG, 2 usage or I/O error.",
    )
    events.add_argument("--out", required=True, metavar="FILE", help="the export file")
    events.add_argument("--key", required=True, metavar="KEYFILE", help="the Ed25519 private key (PEM) that signs")
    events.add_argument(
        "--events",
        metavar="LOG",
        help="offline, no broker: export the plain JSON-lines event LOG (its lines as partition 0, offset = "
        "0-based line number), or, when LOG is an audit export, sign it again with KEYFILE (every chain value "
        "is checked first)",
    )
    add_kafka_args(events)
    events.set_defaults(run=_export)
