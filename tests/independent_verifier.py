"""An independent verifier of TrialGuard audit exports, written from docs/audit-format.md alone.

It imports nothing from TrialGuard (standard library and ``cryptography`` only), so that the
specification, not the product's code, is what it checks against: the tamper suite runs every
case through it and through ``trialguard audit verify`` and requires them to agree.

    python tests/independent_verifier.py EXPORT PUBLIC_KEY.pem [--checkpoints FILE] [--as-of OFFSET] [--explain]

``--checkpoints FILE``: the live checkpoints, one per line as ``<offset on audit-checkpoints> <value>``.
Exit status 0 accepted, 1 refused (the reason on stdout).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_pem_public_key

HEADER = '{"format":2,"kind":"header"}'
FIELDS = {
    "record2": {
        "kind",
        "topic",
        "partition",
        "offset",
        "timestamp_type",
        "timestamp",
        "key",
        "value",
        "headers",
        "chain",
    },
    "manifest": {"format", "kind", "study", "topic", "partition_count", "partitions", "key_id", "signature"},
    "entry": {"partition", "first_offset", "last_offset", "count", "head"},
    "checkpoint2": {"format", "kind", "topic", "partition", "first_offset", "last_offset", "count", "head"}
    | {"key_id", "signature"},
    "record1": {"kind", "topic", "partition", "offset", "timestamp", "key", "value", "chain"},
    "checkpoint1": {"kind", "topic", "partition", "last_offset", "count", "head", "key_id", "signature"},
}


class RefusedError(Exception):
    """The export does not hold."""


def sized(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def opt(b: bytes | None) -> bytes:
    return b"\x00" if b is None else b"\x01" + sized(b)


def b64(s: Any) -> bytes:
    if not isinstance(s, str):
        raise RefusedError("a base64 field is not a string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        raise RefusedError("invalid base64") from None
    if base64.b64encode(raw).decode() != s:
        raise RefusedError("non-canonical base64")
    return raw


def opt_b64(s: Any) -> bytes | None:
    return None if s is None else b64(s)


def digest(s: Any) -> bytes:
    if not isinstance(s, str) or len(s) != 64 or any(c not in "0123456789abcdef" for c in s):
        raise RefusedError("not 64 lowercase hex digits")
    return bytes.fromhex(s)


def integer(v: Any, low: int, high: int = 2**63 - 1) -> int:
    if type(v) is not int or not low <= v <= high:
        raise RefusedError(f"integer out of range: {str(v)[:30]}")
    return v


def text(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise RefusedError("not a non-empty string")
    return v


def parse(line: bytes, kinds: set[str]) -> dict[str, Any]:
    """A canonical JSON object with exactly the fields of its kind (section 2)."""
    try:
        s = line.decode("utf-8")
        obj = json.loads(s)
    except ValueError:
        raise RefusedError("not UTF-8 JSON") from None
    if not isinstance(obj, dict):
        raise RefusedError("not an object")
    if json.dumps(obj, sort_keys=True, separators=(",", ":")) != s:
        raise RefusedError("not canonical")
    kind = next((k for k in kinds if FIELDS[k] == set(obj) and obj.get("kind") == k.rstrip("12")), None)
    if kind is None:
        raise RefusedError(f"not a {'/'.join(sorted(kinds))} line (kind or fields)")
    obj["_kind"] = kind
    return obj


def genesis2(topic: str, partition: int) -> bytes:
    return hashlib.sha256(
        b"trialguard-audit-chain/v2\n" + sized(topic.encode()) + struct.pack(">I", partition)
    ).digest()


def record2(r: dict[str, Any]) -> bytes:
    """Section 4."""
    headers = r["headers"]
    if not isinstance(headers, list):
        raise RefusedError("headers not a list")
    out = sized(text(r["topic"]).encode()) + struct.pack(
        ">Iqbq",
        integer(r["partition"], 0, 2**31 - 1),
        integer(r["offset"], 0),
        integer(r["timestamp_type"], -1, 1),
        integer(r["timestamp"], -1),
    )
    out += opt(opt_b64(r["key"])) + opt(opt_b64(r["value"])) + struct.pack(">I", len(headers))
    for h in headers:
        if not (isinstance(h, list) and len(h) == 2 and isinstance(h[0], str)):
            raise RefusedError("bad header")
        out += sized(h[0].encode()) + opt(opt_b64(h[1]))
    return out


def genesis1(topic: str, partition: int) -> bytes:
    return hashlib.sha256(f"trialguard:{topic}:{partition}".encode()).digest()


def record1(r: dict[str, Any]) -> bytes:
    """Section 11."""
    out = sized(text(r["topic"]).encode()) + struct.pack(
        ">Iqq", integer(r["partition"], 0, 2**31 - 1), integer(r["offset"], 0), integer(r["timestamp"], -1)
    )
    key = opt_b64(r["key"])
    return out + (b"\x00" if key is None else b"\x01" + sized(key)) + sized(b64(r["value"]))


def position(e: dict[str, Any]) -> bytes:
    return struct.pack(
        ">IqqQ",
        integer(e["partition"], 0, 2**31 - 1),
        integer(e["first_offset"], -1),
        integer(e["last_offset"], -1),
        integer(e["count"], 0),
    ) + digest(e["head"])


def manifest_message(m: dict[str, Any]) -> bytes:
    """Section 6."""
    entries = m["partitions"]
    if not isinstance(entries, list) or not all(isinstance(e, dict) and set(e) == FIELDS["entry"] for e in entries):
        raise RefusedError("manifest partitions malformed")
    out = b"trialguard-audit-manifest/v2\n" + sized(text(m["study"]).encode()) + sized(text(m["topic"]).encode())
    out += struct.pack(">II", integer(m["partition_count"], 0, 2**32 - 1), len(entries))
    return out + b"".join(position(e) for e in entries) + digest(m["key_id"])


def checkpoint_message(c: dict[str, Any]) -> bytes:
    """Section 9 (format 2) and 11 (format 1)."""
    if c["_kind"] == "checkpoint2":
        return (
            b"trialguard-audit-checkpoint/v2\n" + sized(text(c["topic"]).encode()) + position(c) + digest(c["key_id"])
        )
    return (
        b"trialguard-audit-checkpoint/v1\n"
        + sized(text(c["topic"]).encode())
        + struct.pack(">IqQ", integer(c["partition"], 0), integer(c["last_offset"], -1), integer(c["count"], 0))
        + digest(c["head"])
        + digest(c["key_id"])
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()


def check_signature(obj: dict[str, Any], message: bytes, public_key: Ed25519PublicKey) -> None:
    if obj["key_id"] != key_id(public_key):
        raise RefusedError("signed under another key id")
    try:
        public_key.verify(b64(obj["signature"]), message)
    except InvalidSignature:
        raise RefusedError("bad signature") from None


class Partition:
    """A partition's chain as the file gives it (section 5), format 1 and 2 side by side."""

    def __init__(self, topic: str, number: int) -> None:
        self.topic, self.number = topic, number
        self.h2, self.h1 = genesis2(topic, number), genesis1(topic, number)
        self.offsets: list[int] = []
        self.heads2: list[bytes] = []
        self.heads1: list[bytes] = []

    def entry(self) -> dict[str, Any]:
        first, last = (self.offsets[0], self.offsets[-1]) if self.offsets else (-1, -1)
        return {"partition": self.number, "first_offset": first, "last_offset": last, "count": len(self.offsets)}


def verify(data: bytes, public_key: Ed25519PublicKey) -> tuple[int, dict[int, Partition], list[str]]:
    """Verify an export; return its format, its partitions and an explanation of every digest.

    Raises:
        RefusedError: the export does not hold.
    """
    if not data or not data.endswith(b"\n"):
        raise RefusedError("empty, or the last line has no LF")
    lines = data[:-1].split(b"\n")
    fmt = 2 if lines[0] == HEADER.encode() else 1
    body = lines[1:] if fmt == 2 else lines
    parts: dict[int, Partition] = {}
    explain: list[str] = []
    topic = None
    trailer: list[dict[str, Any]] = []
    for line in body:
        r = parse(line, {f"record{fmt}", "manifest" if fmt == 2 else "checkpoint1"})
        if not r["_kind"].startswith("record"):
            trailer.append(r)
            continue
        if trailer:
            raise RefusedError("a record after the manifest or checkpoints")
        topic = topic or r["topic"]
        if r["topic"] != topic:
            raise RefusedError("records of two topics")
        n = r["partition"]
        if n not in parts:
            if parts and n < max(parts):
                raise RefusedError("partitions out of order")
            parts[n] = Partition(topic, n)
        elif n != max(parts):
            raise RefusedError("a partition resumes")
        p = parts[n]
        if p.offsets and r["offset"] <= p.offsets[-1]:
            raise RefusedError("offsets do not increase")
        canonical = record2(r) if fmt == 2 else record1(r)
        h = p.h2 if fmt == 2 else p.h1
        new = hashlib.sha256(h + canonical).digest()
        explain.append(f"partition {n} offset {r['offset']}: record {canonical.hex()} h_prev {h.hex()} h {new.hex()}")
        if new.hex() != r["chain"]:
            raise RefusedError("chain value does not follow")
        if fmt == 2:
            p.h2 = new
            value = opt_b64(r["value"]) or b""
            p.h1 = hashlib.sha256(p.h1 + record1({**r, "value": base64.b64encode(value).decode()})).digest()
        else:
            p.h1 = new
        p.offsets.append(r["offset"])
        p.heads2.append(p.h2)
        p.heads1.append(p.h1)
    if fmt == 2:
        if len(trailer) != 1:
            raise RefusedError("missing manifest" if not trailer else "more than one manifest")
        m = trailer[0]
        message = manifest_message(m)
        explain.append(f"manifest message {message.hex()}")
        check_signature(m, message, public_key)
        if m["topic"] != (topic or m["topic"]):
            raise RefusedError("manifest topic differs")
        if [e["partition"] for e in m["partitions"]] != list(range(m["partition_count"])):
            raise RefusedError("manifest partitions are not 0..count-1")
        if any(n >= m["partition_count"] for n in parts):
            raise RefusedError("a partition the manifest lacks")
        for e in m["partitions"]:
            p = parts.setdefault(e["partition"], Partition(m["topic"], e["partition"]))
            if {**p.entry(), "head": p.h2.hex()} != e:
                raise RefusedError(f"partition {e['partition']} differs from the manifest (missing or changed records)")
        return fmt, parts, explain
    if not parts and not trailer:
        raise RefusedError("no records")
    seen: list[int] = []
    for c in trailer:
        n = c["partition"]
        if c["topic"] != (topic or c["topic"]) or (seen and n <= seen[-1]):
            raise RefusedError("checkpoint out of order or of another topic")
        seen.append(n)
        p = parts.setdefault(n, Partition(c["topic"], n))
        if (c["count"], c["last_offset"], c["head"]) != (p.entry()["count"], p.entry()["last_offset"], p.h1.hex()):
            raise RefusedError(f"checkpoint of partition {n} differs from the records")
        check_signature(c, checkpoint_message(c), public_key)
    if sorted(parts) != seen:
        raise RefusedError("a partition without its checkpoint")
    return fmt, parts, explain


def compare_live(
    fmt: int,
    parts: dict[int, Partition],
    checkpoints: list[tuple[int, bytes]],
    key: Ed25519PublicKey,
    as_of: int | None,
) -> list[str]:
    """Section 9: the checkpoints beyond the export's end (accepted ones).

    Raises:
        RefusedError: a checkpoint that does not hold or disagrees, or one beyond the end not after the as-of point.
    """
    beyond = []
    if as_of is not None and as_of not in [o for o, _ in checkpoints]:
        raise RefusedError("no checkpoint at the as-of offset")
    for offset, value in checkpoints:
        c = parse(value, {"checkpoint1", "checkpoint2"})
        check_signature(c, checkpoint_message(c), key)
        p = parts.get(c["partition"])
        if p is None or p.topic != c["topic"]:
            raise RefusedError(f"checkpoint {offset}: partition not in the export")
        count = c["count"]
        if count > len(p.offsets):
            if as_of is None or offset <= as_of:
                raise RefusedError(f"checkpoint {offset} is beyond the export's end: rollback")
            beyond.append(f"checkpoint {offset} (partition {c['partition']}, count {count})")
            continue
        v2 = c["_kind"] == "checkpoint2"
        heads = p.heads2 if v2 else p.heads1
        start = genesis2(p.topic, p.number) if v2 else genesis1(p.topic, p.number)
        if count and p.offsets[count - 1] != c["last_offset"]:
            raise RefusedError(f"checkpoint {offset}: last offset differs")
        if v2 and count and p.offsets[0] != c["first_offset"]:
            raise RefusedError(f"checkpoint {offset}: first offset differs")
        if v2 and fmt == 1:
            continue  # a format 1 export lacks what format 2 hashes: positions only
        if (heads[count - 1] if count else start).hex() != c["head"]:
            raise RefusedError(f"checkpoint {offset}: head differs")
    return beyond


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("export")
    parser.add_argument("public_key")
    parser.add_argument("--checkpoints")
    parser.add_argument("--as-of", type=int)
    parser.add_argument("--explain", action="store_true")
    args = parser.parse_args(argv)
    key = load_pem_public_key(Path(args.public_key).read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    try:
        fmt, parts, explain = verify(Path(args.export).read_bytes(), key)
        checkpoints = []
        if args.checkpoints:
            for line in Path(args.checkpoints).read_bytes().splitlines():
                offset, value = line.split(b" ", 1)
                checkpoints.append((int(offset), value))
        beyond = compare_live(fmt, parts, checkpoints, key, args.as_of)
    except RefusedError as e:
        print(f"REFUSED: {e}")
        return 1
    if args.explain:
        print(f"key id {key_id(key)}")
        print("\n".join(explain))
    records = sum(len(p.offsets) for p in parts.values())
    print(f"ACCEPTED: format {fmt}, {records} records, {len(parts)} partitions; beyond the export: {beyond or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
