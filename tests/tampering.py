"""The tamper suite: an export and its live checkpoints as TrialGuard writes them, each tamper case
an attacker or a careless insider could try, and both verifiers' answers to each.

``.venv/bin/python -m tests.tampering`` prints the table (case, expected, ``trialguard audit
verify``'s answer, the independent verifier's answer); tests/unit/test_audit_tamper_suite.py
requires, case by case, that both give the expected answer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.export_writer import ExportWriter
from services.ledger.chain_v2 import ChainV2
from services.ledger.export_v2 import checkpoint_line
from services.ledger.signing_v2 import sign_checkpoint
from tests import independent_verifier as iv

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
STUDY = "NCT06904729"
TOPIC = f"trialguard.{STUDY}.participant-events"
CHECKPOINTS_TOPIC = f"trialguard.{STUDY}.audit-checkpoints"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "three-participants.jsonl"
FORMAT1_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "audit" / "format1-export.jsonl"
PARTITION_OF = {b"E-01": 0, b"E-02": 1, b"E-03": 2}
PARTITIONS = 4  # partition 3 stays empty
CHECKPOINT_EVERY = 3
OLDER_SHARE = 0.6

Record = tuple[int, int, int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]


@dataclass(frozen=True)
class Scenario:
    """What TrialGuard wrote: the export now, an older genuine export, the live checkpoints.

    Attributes:
        lines: the export made now (format 2), line by line.
        older: an export made earlier, when the log held the first records only.
        older_as_of: the offset of the last live checkpoint ``older`` contains.
        checkpoints: every live checkpoint, as (offset on audit-checkpoints, value).
    """

    lines: list[str]
    older: list[str]
    older_as_of: int
    checkpoints: list[tuple[int, bytes]]


def _records() -> list[Record]:
    """The example's first 45 events as the log holds them: keyed by participant, partitioned by
    participant, offsets with gaps where transaction markers sit; one carries a header, the last
    is a tombstone (a null value)."""
    next_offset = dict.fromkeys(range(PARTITIONS), 0)
    records: list[Record] = []
    lines = [line for line in EXAMPLE.read_bytes().splitlines() if line.strip()][:45]
    for i, value in enumerate(lines):
        key = json.loads(value)["participant_id"].encode()
        partition = PARTITION_OF[key]
        offset = next_offset[partition]
        next_offset[partition] += 2 if i % 4 == 3 else 1
        headers: list[tuple[str, bytes | None]] = [("origin", b"gateway")] if i == 7 else []
        records.append((partition, offset, 1, 1_767_225_600_000 + i, key, value, headers))
    records.append((2, next_offset[2], 1, 1_767_225_600_100, b"E-03", None, []))
    return records


def _export(records: list[Record], key: Ed25519PrivateKey = KEY) -> list[str]:
    f = io.StringIO()
    writer = ExportWriter(f, STUDY, TOPIC)
    for partition in range(PARTITIONS):
        writer.partition(partition)
        for p, offset, ts_type, ts, k, value, headers in records:
            if p == partition:
                writer.record(offset, ts_type, ts, k, value, headers)
    writer.finish(PARTITIONS, key)
    return f.getvalue().splitlines()


def export_of(key: Ed25519PrivateKey) -> list[str]:
    """The scenario's export as signed by ``key``."""
    return _export(_records(), key)


@cache
def scenario() -> Scenario:
    """The export, the older export and the live checkpoints (built once)."""
    records = _records()
    chains = {p: ChainV2(TOPIC, p) for p in range(PARTITIONS)}
    checkpoints: list[tuple[int, bytes]] = []
    older_count = int(len(records) * OLDER_SHARE)
    older_as_of = -1
    offset = 0
    for i, (p, record_offset, ts_type, ts, k, value, headers) in enumerate(records):
        chains[p].append(record_offset, ts_type, ts, k, value, headers)
        if chains[p].count % CHECKPOINT_EVERY == 0:
            checkpoints.append((offset, checkpoint_line(sign_checkpoint(chains[p], KEY)).encode()))
            if i < older_count:
                older_as_of = offset
            offset += 2  # the transaction's commit marker takes the next offset
    return Scenario(_export(records), _export(records[:older_count]), older_as_of, checkpoints)


def format1_records() -> list[Record]:
    """The records of the format 1 fixture: ten of partition 0, eight of partition 1, the tombstone of 2."""
    records = _records()
    return [r for r in records if r[0] == 0][:10] + [r for r in records if r[0] == 1][:8] + records[-1:]


@cache
def format1_checkpoints() -> list[tuple[int, bytes]]:
    """The live checkpoints a format 1 rules service signed while the fixture's records arrived."""
    from services.ledger.chain import Chain
    from services.ledger.export_format import checkpoint_line as checkpoint_line_v1
    from services.ledger.signatures import sign

    chains = {p: Chain(TOPIC, p) for p in range(PARTITIONS)}
    checkpoints: list[tuple[int, bytes]] = []
    for p, offset, _, ts, k, value, _ in format1_records():
        chains[p].append(offset, ts, k, value or b"")
        if chains[p].count % CHECKPOINT_EVERY == 0:
            checkpoints.append((2 * len(checkpoints), checkpoint_line_v1(sign(chains[p], KEY)).encode()))
    return checkpoints


# --- what an attacker does to the lines -------------------------------------------------------


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def data(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


def record_numbers(lines: list[str], partition: int) -> list[int]:
    """Indexes of the record lines of a partition."""
    return [
        i for i, line in enumerate(lines) if '"kind":"record"' in line and json.loads(line)["partition"] == partition
    ]


def edit(lines: list[str], index: int, change: Callable[[dict[str, Any]], None]) -> list[str]:
    obj = json.loads(lines[index])
    change(obj)
    return [*lines[:index], dumps(obj), *lines[index + 1 :]]


def rechain(lines: list[str]) -> list[str]:
    """Recompute every record's chain value from the spec, as a forger who knows it would."""
    heads: dict[int, bytes] = {}
    out = []
    for line in lines:
        obj = json.loads(line)
        if obj.get("kind") == "record":
            p = obj["partition"]
            previous = heads.get(p, iv.genesis2(obj["topic"], p))
            heads[p] = hashlib.sha256(previous + iv.record2(obj)).digest()
            obj["chain"] = heads[p].hex()
            line = dumps(obj)
        out.append(line)
    return out


def manifest_edit(change: Callable[[dict[str, Any]], None]) -> Callable[[list[str]], list[str]]:
    return lambda lines: edit(lines, len(lines) - 1, change)


def entry(partition: int, name: str, value: Callable[[Any], Any]) -> Callable[[dict[str, Any]], None]:
    def change(m: dict[str, Any]) -> None:
        m["partitions"][partition][name] = value(m["partitions"][partition][name])

    return change


def resign_under_original_id(lines: list[str]) -> list[str]:
    """Drop a record, rebuild the manifest from the file and sign it with another key, keeping the
    original key id."""
    cut = lines[:5] + lines[6:]
    forged = _manifest_of(rechain(cut[:-1]), OTHER_KEY)
    forged["key_id"] = json.loads(lines[-1])["key_id"]
    return [*rechain(cut[:-1]), dumps(forged)]


def _manifest_of(lines: list[str], key: Ed25519PrivateKey) -> dict[str, Any]:
    m: dict[str, Any] = json.loads(scenario().lines[-1])
    for e in m["partitions"]:
        records = [json.loads(lines[i]) for i in record_numbers(lines, e["partition"])]
        e["count"] = len(records)
        e["first_offset"] = records[0]["offset"] if records else -1
        e["last_offset"] = records[-1]["offset"] if records else -1
        e["head"] = records[-1]["chain"] if records else iv.genesis2(TOPIC, e["partition"]).hex()
    m["key_id"] = iv.key_id(key.public_key())
    m["signature"] = base64.b64encode(key.sign(iv.manifest_message(m))).decode()
    return m


def rollback_to_checkpoint(lines: list[str]) -> list[str]:
    """Partition 0 cut back to its first live checkpoint, and that checkpoint's signed position put
    in the manifest in place of the partition's (the signature cannot be redone)."""
    first = next(json.loads(v) for _, v in scenario().checkpoints if json.loads(v)["partition"] == 0)
    keep = record_numbers(lines, 0)[first["count"] :]
    cut = [line for i, line in enumerate(lines) if i not in keep]
    return edit(cut, len(cut) - 1, lambda m: m["partitions"][0].update({k: first[k] for k in iv.FIELDS["entry"]}))


def drop_partition(partition: int, manifest_too: bool) -> Callable[[list[str]], list[str]]:
    def apply(lines: list[str]) -> list[str]:
        drop = set(record_numbers(lines, partition))
        kept = [line for i, line in enumerate(lines) if i not in drop]
        if not manifest_too:
            return kept

        def forget(m: dict[str, Any]) -> None:
            m["partitions"] = [e for e in m["partitions"] if e["partition"] != partition]
            m["partitions"] = [{**e, "partition": n} for n, e in enumerate(m["partitions"])]
            m["partition_count"] -= 1

        return edit(kept, len(kept) - 1, forget)

    return apply


def value_byte(obj: dict[str, Any]) -> None:
    raw = bytearray(base64.b64decode(obj["value"]))
    raw[2] ^= 0x01
    obj["value"] = base64.b64encode(bytes(raw)).decode()
