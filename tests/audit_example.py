"""The worked example of docs/audit-format.md section 12, generated with TrialGuard's own code.

``python -m tests.audit_example`` rewrites the section and docs/audit-example/; the test
tests/unit/test_audit_worked_example.py regenerates them and fails on any difference, then checks
the section with the independent verifier.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.export_writer import ExportWriter
from services.ledger.chain_v2 import GENESIS_TAG, MANIFEST_TAG, Headers, encode_record, genesis, manifest_message
from services.ledger.export_v2 import Manifest, parse_v2
from services.ledger.keys import key_id

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "audit-format.md"
FOLDER = ROOT / "docs" / "audit-example"
KEY_FILE = FOLDER / "EXAMPLE-NOT-SECRET.key"
EXPORT_FILE = FOLDER / "example-export.jsonl"
BEGIN, END = "<!-- worked-example:begin -->", "<!-- worked-example:end -->"

SEED = hashlib.sha256(b"TrialGuard audit-format worked example key: public, never sign evidence with it").digest()
KEY = Ed25519PrivateKey.from_private_bytes(SEED)
STUDY = "EXAMPLE-01"
TOPIC = f"trialguard.{STUDY}.participant-events"
# (partition, offset, timestamp type, timestamp, key, value, headers)
RECORDS: list[tuple[int, int, int, int, bytes | None, bytes | None, list[tuple[str, bytes | None]]]] = [
    (0, 0, 1, 1_767_225_600_000, b"P-1", b'{"e":1}', [("trace", b"ab")]),
    (0, 2, 1, 1_767_225_600_001, b"P-1", b"", []),
    (1, 0, 0, 1_767_225_600_002, None, None, []),
]
PARTITION_COUNT = 2


def key_files() -> dict[Path, bytes]:
    """The example key pair as ``trialguard audit keygen`` writes it."""
    private = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {KEY_FILE: private, KEY_FILE.with_name(KEY_FILE.name + ".pub"): public}


def export_text() -> str:
    """The example export, exactly as the exporter writes it."""
    f = io.StringIO()
    writer = ExportWriter(f, STUDY, TOPIC)
    for partition in range(PARTITION_COUNT):
        writer.partition(partition)
        for p, offset, ts_type, ts, k, value, headers in RECORDS:
            if p == partition:
                writer.record(offset, ts_type, ts, k, value, headers)
    writer.finish(PARTITION_COUNT, KEY)
    return f.getvalue()


def _opt(data: bytes | None) -> str:
    if data is None:
        return "00"
    return " ".join(part for part in ("01", struct.pack(">I", len(data)).hex(), data.hex()) if part)


def _record_table(
    p: int, offset: int, ts_type: int, ts: int, k: bytes | None, v: bytes | None, headers: Headers
) -> str:
    rows = [
        ("u32 len(topic)", struct.pack(">I", len(TOPIC)).hex()),
        ("topic", TOPIC.encode().hex()),
        ("u32 partition", struct.pack(">I", p).hex()),
        ("i64 offset", struct.pack(">q", offset).hex()),
        ("i8 timestamp_type", struct.pack(">b", ts_type).hex()),
        ("i64 timestamp", struct.pack(">q", ts).hex()),
        ("opt(key)", _opt(k)),
        ("opt(value)", _opt(v)),
        ("u32 headers", struct.pack(">I", len(headers)).hex()),
    ]
    for name, value in headers:
        rows += [(f"header {name!r} name", struct.pack(">I", len(name)).hex() + " " + name.encode().hex())]
        rows += [(f"header {name!r} opt(value)", _opt(value))]
    assembled = bytes.fromhex("".join(hexes for _, hexes in rows).replace(" ", ""))
    assert assembled == encode_record(TOPIC, p, offset, ts_type, ts, k, v, headers)
    return "\n".join(f"| {name} | `{hexes}` |" for name, hexes in rows)


def section() -> str:
    """The markdown between the worked-example markers."""
    public = KEY.public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    lines = export_text().splitlines()
    out = [
        f"Key: Ed25519 private key seed (32 bytes) `{SEED.hex()}`; raw public key `{raw.hex()}`;",
        f"key id = SHA-256(raw public key) = `{key_id(public)}`.",
        "",
        f"Records (study `{STUDY}`, topic `{TOPIC}`, {PARTITION_COUNT} partitions): partition 0 offset 0,",
        'LogAppendTime, key `P-1`, value `{"e":1}`, header `trace` = `ab`; partition 0 offset 2 (offset 1 is a',
        "transaction marker), key `P-1`, an **empty** value; partition 1 offset 0, CreateTime, **null** key and",
        "**null** value. The export file (`docs/audit-example/example-export.jsonl`):",
        "",
        "```",
        *lines,
        "```",
        "",
    ]
    heads: dict[int, bytes] = {}
    for p, offset, ts_type, ts, k, v, headers in RECORDS:
        if p not in heads:
            start = GENESIS_TAG + struct.pack(">I", len(TOPIC)) + TOPIC.encode() + struct.pack(">I", p)
            heads[p] = genesis(TOPIC, p)
            assert hashlib.sha256(start).digest() == heads[p]
            out += [f"Partition {p}: `h_0` = SHA-256 of `{start.hex()}`", f"= `{heads[p].hex()}`", ""]
        record = encode_record(TOPIC, p, offset, ts_type, ts, k, v, headers)
        previous, heads[p] = heads[p], hashlib.sha256(heads[p] + record).digest()
        out += [
            f"Partition {p} offset {offset}, canonical record ({len(record)} bytes):",
            "",
            "| field | bytes (hex) |",
            "|---|---|",
            _record_table(p, offset, ts_type, ts, k, v, headers),
            "",
            f"`h` = SHA-256(`{previous.hex()}` ‖ record) = `{heads[p].hex()}`",
            "",
        ]
    manifest = parse_v2(lines[-1], len(lines))
    assert isinstance(manifest, Manifest)
    message = manifest_message(STUDY, TOPIC, PARTITION_COUNT, manifest.positions, key_id(public))
    assert message.startswith(MANIFEST_TAG)
    out += [
        f"Manifest message ({len(message)} bytes), which the manifest's signature covers:",
        "",
        "```",
        *re.findall(".{1,96}", message.hex()),
        "```",
        "",
        f"Ed25519 signature (deterministic, RFC 8032): `{manifest.signature.hex()}`",
    ]
    return "\n".join(out)


def document(current: str) -> str:
    """``current`` with the worked example section regenerated."""
    before, rest = current.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{section()}\n{END}{after}"


def main() -> None:
    """Rewrite the worked example: the section of the document, the export file and the key files."""
    FOLDER.mkdir(exist_ok=True)
    for path, data in key_files().items():
        path.write_bytes(data)
    EXPORT_FILE.write_text(export_text(), encoding="utf-8")
    DOC.write_text(document(DOC.read_text(encoding="utf-8")), encoding="utf-8")


if __name__ == "__main__":
    main()
