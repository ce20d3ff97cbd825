"""``trialguard audit verify``: check an export's hash chains and signed checkpoints.

The verifier recomputes every partition's chain from the records' bytes and requires the file
to be exactly in the order an export writes it: partitions one after another in ascending
order, each in increasing offset order, then one checkpoint per partition in the same order.
With that, a changed byte, a removed, inserted or moved line, or a forged checkpoint breaks a
check, and the first line that breaks is named.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import structlog
from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.live_check import compare_live
from services.audit.verified import VerificationError, Verified
from services.audit.verify_v2 import check_export_v2, is_v2
from services.kafka import KafkaSettings, add_kafka_args, settings_from_args
from services.ledger.chain import Chain
from services.ledger.export_format import ExportedCheckpoint, ExportedRecord, ExportFormatError, read_lines
from services.ledger.keys import KeyFileError, key_id, load_public_key
from services.ledger.signatures import check_signature

__all__ = ["VerificationError", "Verified", "add_commands", "check_export", "check_live"]

log = structlog.get_logger("trialguard.audit.verify")


def check_export(path: Path, public_key: Ed25519PublicKey) -> Verified:
    """Verify an export file.

    Raises:
        VerificationError: the first line that breaks the chain, the order or a checkpoint.
        OSError: the file cannot be read.
    """
    if is_v2(path):
        return check_export_v2(path, public_key)
    kid = key_id(public_key)
    result = Verified()
    chains: dict[tuple[str, int], Chain] = {}
    current: Chain | None = None
    number = 0
    try:
        for number, line in read_lines(path):
            if isinstance(line, ExportedRecord):
                current = _check_record(line, number, current, chains, result)
            else:
                _check_checkpoint(line, number, chains, result, public_key, kid)
    except ExportFormatError as e:
        raise VerificationError(e.line, e.reason) from None
    end = number + 1
    if not chains:
        raise VerificationError(end, "no records and no checkpoints: not an export")
    for where, chain in chains.items():
        if where not in result.checkpoints:
            raise VerificationError(
                end, f"the file ends without the checkpoint of {chain.topic} partition {chain.partition}"
            )
    return result


def _check_record(
    record: ExportedRecord,
    number: int,
    current: Chain | None,
    chains: dict[tuple[str, int], Chain],
    result: Verified,
) -> Chain:
    where = (record.topic, record.partition)
    if result.checkpoints:
        raise VerificationError(number, "a record line after the checkpoint lines")
    if current is None or (current.topic, current.partition) != where:
        if where in chains:
            raise VerificationError(number, f"partition {record.partition} resumes after another partition's records")
        if current is not None and where < (current.topic, current.partition):
            raise VerificationError(number, f"partition {record.partition} comes after partition {current.partition}")
        current = chains[where] = Chain(record.topic, record.partition)
        result.heads[where] = []
        result.offsets[where] = []
    if record.offset <= current.last_offset:
        raise VerificationError(number, f"offset {record.offset} does not follow offset {current.last_offset}")
    head = current.append(record.offset, record.timestamp_ms, record.key, record.value).hex()
    if head != record.chain:
        raise VerificationError(
            number,
            f"chain value does not match this record and the ones before it in partition {record.partition} "
            "(this line was changed, or a line of the partition before it was changed, removed, inserted or moved)",
        )
    result.heads[where].append(head)
    result.offsets[where].append(record.offset)
    result.records += 1
    return current


def _check_checkpoint(
    checkpoint: ExportedCheckpoint,
    number: int,
    chains: dict[tuple[str, int], Chain],
    result: Verified,
    public_key: Ed25519PublicKey,
    kid: str,
) -> None:
    where = (checkpoint.topic, checkpoint.partition)
    if where in result.checkpoints:
        raise VerificationError(number, f"a second checkpoint of partition {checkpoint.partition}")
    if result.checkpoints and where < max(result.checkpoints):
        raise VerificationError(number, f"checkpoint of partition {checkpoint.partition} is out of order")
    # An empty partition has a checkpoint too (count 0, the genesis head) but no chain yet.
    chain = chains.setdefault(where, Chain(checkpoint.topic, checkpoint.partition))
    result.heads.setdefault(where, [])
    result.offsets.setdefault(where, [])
    problems = [
        (checkpoint.count != chain.count, f"count {checkpoint.count}, but the file has {chain.count} records"),
        (
            checkpoint.last_offset != chain.last_offset,
            f"last offset {checkpoint.last_offset}, but the file's last record has offset {chain.last_offset}",
        ),
        (checkpoint.head != chain.head.hex(), "head does not match the chain of the file's records"),
    ]
    for broken, reason in problems:
        if broken:
            raise VerificationError(number, f"checkpoint of partition {checkpoint.partition}: {reason}")
    if (why := check_signature(checkpoint, public_key, kid)) is not None:
        raise VerificationError(number, why)
    result.checkpoints[where] = checkpoint


async def check_live(
    settings: KafkaSettings, topic: str, verified: Verified, public_key: Ed25519PublicKey
) -> tuple[int, list[str]]:
    """Checkpoints that agree, and the problems (a live checkpoint beyond the export's end is one:
    see :func:`services.audit.live_check.compare_live`, which also takes an as-of checkpoint)."""
    comparison = await compare_live(settings, topic, verified, public_key)
    return comparison.compared, comparison.problems


async def _verify(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        public_key = load_public_key(Path(args.public_key))
    except KeyFileError as e:
        print(f"trialguard audit verify: {e}", file=sys.stderr)
        return 2
    try:
        verified = check_export(path, public_key)
    except VerificationError as e:
        log.warning("export verification failed", line=e.line)
        print(f"trialguard audit verify: {path}:{e.line}: {e.reason}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"trialguard audit verify: {e.filename or path}: {e.strerror}", file=sys.stderr)
        return 2
    signed = "signed checkpoints (format 1: completeness not signed)"
    if verified.manifest is not None:
        signed = f"signed manifest (study {verified.manifest.study}, topic {verified.manifest.topic})"
    print(
        f"{path}: format {verified.format}, {verified.records:,} records in {verified.partitions} partitions; "
        f"chains and {signed} hold"
    )
    if args.bootstrap_servers is None:
        if args.as_of_checkpoint is not None:
            print("trialguard audit verify: --as-of-checkpoint needs --bootstrap-servers", file=sys.stderr)
            return 2
        return 0
    settings = settings_from_args(args)
    if verified.manifest is not None and verified.manifest.topic != settings.topics.participant_events:
        print(
            f"trialguard audit verify: the export signs topic {verified.manifest.topic} (study "
            f"{verified.manifest.study}); --study {settings.study_id} checks {settings.topics.participant_events}",
            file=sys.stderr,
        )
        return 1
    try:
        live = await compare_live(
            settings, settings.topics.audit_checkpoints, verified, public_key, args.as_of_checkpoint
        )
    except KafkaError as e:
        print(f"trialguard audit verify: Kafka error: {type(e).__name__}", file=sys.stderr)
        return 2
    for beyond in live.beyond:
        print(beyond)
    for problem in live.problems:
        print(f"trialguard audit verify: {problem}", file=sys.stderr)
    if live.problems:
        return 1
    print(f"{live.compared} live checkpoints agree with the export; {len(live.beyond)} beyond its as-of checkpoint")
    return 0


def add_commands(audit: argparse._SubParsersAction[Any], export: argparse._SubParsersAction[Any]) -> None:
    """Register ``trialguard audit verify``."""
    del export
    verify = audit.add_parser(
        "verify",
        help="check an export's hash chains and signed checkpoints",
        description="Recompute every partition's hash chain from the records' bytes and check each record "
        "line's chain value, the order of the lines, and each checkpoint (count, last offset, head, Ed25519 "
        "signature by the given public key). With --bootstrap-servers, also compare the signed checkpoints the rules "
        "service wrote to the audit-checkpoints topic: every one must agree with the export, and one beyond the "
        "export's end is a rollback (exit 1) unless --as-of-checkpoint says the export is older. The format is "
        "specified in docs/audit-format.md. Exit status: 0 everything holds (summary on stdout), "
        "1 the first line that breaks is named on stderr, 2 usage, I/O or Kafka error.",
    )
    verify.add_argument("file", help="the export file")
    verify.add_argument("--public-key", required=True, metavar="KEYFILE.pub", help="the Ed25519 public key (PEM)")
    verify.add_argument(
        "--as-of-checkpoint",
        type=int,
        metavar="OFFSET",
        help="the export is deliberately older: it must hold the live checkpoints up to the one at OFFSET of the "
        "audit-checkpoints topic; later ones are reported as beyond it, not as a rollback",
    )
    add_kafka_args(verify)
    # The live check runs only when asked for by giving the broker, not from the environment's default.
    verify.set_defaults(bootstrap_servers=None)
    verify.set_defaults(run=_verify)
