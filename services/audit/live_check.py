"""Comparing a verified export with the live checkpoints the rules service signed
(``trialguard audit verify --bootstrap-servers``).

Each live checkpoint signs a partition's position (count, offsets, head) at the time it was
written. One the export covers (its count is within the export's partition) must agree with the
export's chain at that count. One beyond the export's end is reported, every one of them: the
export ends before a point the log provably reached. That is a rollback (records dropped from the
export or from the log) unless the export is deliberately older: ``--as-of-checkpoint OFFSET``
names the last live checkpoint (its offset on the audit-checkpoints topic, which has one
partition, so its offsets order every checkpoint) the export must contain; those after it are
reported as beyond and accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.verified import Verified
from services.kafka import KafkaSettings, partition_ids, read_partition, read_to_end
from services.ledger.chain import Chain
from services.ledger.chain_v2 import ChainV2, PartitionPosition, genesis
from services.ledger.export_format import ExportedCheckpoint, ExportFormatError, parse_line
from services.ledger.export_v2 import CheckpointV2, parse_v2
from services.ledger.keys import key_id
from services.ledger.signatures import check_signature
from services.ledger.signing_v2 import check_checkpoint


@dataclass
class LiveComparison:
    """What the live checkpoints say about an export.

    Attributes:
        compared: checkpoints within the export that agree with it.
        beyond: checkpoints beyond the export's end that its as-of point allows (reported, accepted).
        problems: what does not hold: a checkpoint that disagrees, one the export should contain
            but ends before (a rollback), a bad signature, an unreadable record.
    """

    compared: int = 0
    beyond: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def verified_from_log(settings: KafkaSettings) -> Verified:
    """participant-events as it is now, chained as an export would be (both formats' heads), to
    compare the live checkpoints with the log itself: one beyond its end means the log lost records."""
    topic = settings.topics.participant_events
    result = Verified(format=2)
    for partition in await partition_ids(settings, topic):
        where = (topic, partition)
        v1, v2 = Chain(topic, partition), ChainV2(topic, partition)
        heads, heads_v2, offsets = result.heads[where], result.heads_v2[where], result.offsets[where] = [], [], []
        async for r in read_partition(settings, topic, partition):
            headers = [(name, value) for name, value in r.headers]
            heads_v2.append(v2.append(r.offset, r.timestamp_type, r.timestamp, r.key, r.value, headers).hex())
            heads.append(v1.append(r.offset, r.timestamp, r.key, r.value or b"").hex())
            offsets.append(r.offset)
            result.records += 1
    return result


def _position_v1(c: ExportedCheckpoint) -> PartitionPosition:
    return PartitionPosition(c.partition, -1, c.last_offset, c.count, c.head)


async def compare_live(
    settings: KafkaSettings, topic: str, verified: Verified, public_key: Ed25519PublicKey, as_of: int | None = None
) -> LiveComparison:
    """Compare every live checkpoint on ``topic`` with the export.

    Args:
        as_of: the audit-checkpoints offset of the last checkpoint the export must contain; None:
            the export must contain every one (it claims to be complete as of now).
    """
    if not await partition_ids(settings, topic):
        return LiveComparison(problems=[f"topic {topic} does not exist"])
    checkpoints = [(record.offset, record.value or b"") async for record in read_to_end(settings, topic)]
    return compare_checkpoints(checkpoints, topic, verified, public_key, as_of)


def compare_checkpoints(
    checkpoints: list[tuple[int, bytes]],
    topic: str,
    verified: Verified,
    public_key: Ed25519PublicKey,
    as_of: int | None = None,
) -> LiveComparison:
    """Compare checkpoint values, by their offset on ``topic`` in offset order, with the export
    (see :func:`compare_live`)."""
    result = LiveComparison()
    kid = key_id(public_key)
    seen_as_of = False
    for offset, value in checkpoints:
        where = f"live checkpoint at {topic} offset {offset}"
        seen_as_of |= offset == as_of
        live, why = _parse(value.decode("utf-8", "replace"), offset, public_key, kid)
        if live is None:
            result.problems.append(f"{where}: {why}")
            continue
        checkpoint_topic, position, version = live
        heads = verified.heads_v2 if version == 2 else verified.heads
        offsets = verified.offsets.get((checkpoint_topic, position.partition))
        if offsets is None:
            offsets = []
            if verified.format == 2 or verified.checkpoints:
                result.problems.append(
                    f"{where}: partition {position.partition} of {checkpoint_topic} is not in the export"
                )
                continue
        name = f"{where} (partition {position.partition}, count {position.count:,}, last offset {position.last_offset})"
        if position.count > len(offsets):
            end = f"the export ends at count {len(offsets):,}" + (f", offset {offsets[-1]}" if offsets else "")
            if as_of is not None and offset > as_of:
                result.beyond.append(f"{name}: beyond the export's end ({end}); written after its as-of checkpoint")
            else:
                result.problems.append(
                    f"{name}: {end}, before this checkpoint: a rollback, or an export older than the log "
                    "(if deliberately older, pass --as-of-checkpoint with the offset of the last checkpoint it holds)"
                )
            continue
        chain_heads = heads.get((checkpoint_topic, position.partition))
        if (disagreement := _disagreement(position, offsets, chain_heads, checkpoint_topic, version)) is not None:
            result.problems.append(f"{name}: {disagreement}")
        else:
            result.compared += 1
    if as_of is not None and not seen_as_of:
        result.problems.append(f"--as-of-checkpoint {as_of}: no checkpoint at that offset of {topic}")
    return result


def _parse(
    text: str, offset: int, public_key: Ed25519PublicKey, kid: str
) -> tuple[tuple[str, PartitionPosition, int] | None, str]:
    """(topic, position, format) of a live checkpoint whose signature holds, or None and why not."""
    try:
        v2 = parse_v2(text, offset)
    except ExportFormatError:
        v2 = None
    if isinstance(v2, CheckpointV2):
        if (why := check_checkpoint(v2, public_key)) is not None:
            return None, why
        return (v2.topic, v2.position, 2), ""
    try:
        v1 = parse_line(text, offset)
    except ExportFormatError as e:
        return None, f"not a checkpoint ({e.reason})"
    if not isinstance(v1, ExportedCheckpoint):
        return None, "not a checkpoint"
    if (why := check_signature(v1, public_key, kid)) is not None:
        return None, why
    return (v1.topic, _position_v1(v1), 1), ""


def _disagreement(
    position: PartitionPosition, offsets: list[int], heads: list[str] | None, topic: str, version: int
) -> str | None:
    count = position.count
    if count and offsets[count - 1] != position.last_offset:
        return f"the export's record number {count:,} has offset {offsets[count - 1]}"
    if version == 2 and count and offsets[0] != position.first_offset:
        return f"the export's first record has offset {offsets[0]}, the checkpoint signs {position.first_offset}"
    if heads is None or len(heads) < count:
        return None  # a format 1 export does not hold what format 2 hashes: the position agrees, no more to compare
    genesis_head = genesis(topic, position.partition) if version == 2 else Chain(topic, position.partition).head
    expected = heads[count - 1] if count else genesis_head.hex()
    if position.head != expected:
        return f"head at count {count:,} differs from the export's chain"
    return None
