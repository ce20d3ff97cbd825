"""The worked example of docs/audit-format.md cannot drift: regenerated from the code it must match
byte for byte, and every digest, message and signature it shows is recomputed by the independent
verifier (tests/independent_verifier.py, written from the document alone)."""

from __future__ import annotations

import hashlib
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tests import audit_example, independent_verifier

RECORD_TABLE = (
    r"canonical record \(\d+ bytes\):\n\n\| field.*?\n\|---\|---\|\n(.*?)\n\n"
    r"`h` = SHA-256\(`([0-9a-f]{64})` ‖ record\) = `([0-9a-f]{64})`"
)
PUBLIC = audit_example.KEY_FILE.with_name(audit_example.KEY_FILE.name + ".pub")


def _section() -> str:
    text = audit_example.DOC.read_text(encoding="utf-8")
    return text.split(audit_example.BEGIN, 1)[1].split(audit_example.END, 1)[0]


def _group(pattern: str, text: str) -> str:
    found = re.search(pattern, text, re.S)
    assert found is not None, pattern
    return found.group(1)


def test_the_document_the_export_and_the_keys_are_what_the_code_generates() -> None:
    text = audit_example.DOC.read_text(encoding="utf-8")
    assert audit_example.document(text) == text, "run: .venv/bin/python -m tests.audit_example"
    assert audit_example.EXPORT_FILE.read_text(encoding="utf-8") == audit_example.export_text()
    for path, data in audit_example.key_files().items():
        assert path.read_bytes() == data


def test_the_independent_verifier_recomputes_every_value_of_the_worked_example() -> None:
    section = _section()
    key = load_pem_public_key(PUBLIC.read_bytes())
    assert isinstance(key, Ed25519PublicKey)
    # The export shown is the export file, and it verifies.
    shown = re.search(r"```\n(\{\"format\":2,\"kind\":\"header\"\}\n.*?)```", section, re.S)
    assert shown is not None
    assert shown.group(1) == audit_example.EXPORT_FILE.read_text(encoding="utf-8")
    fmt, parts, explain = independent_verifier.verify(shown.group(1).encode(), key)
    assert fmt == 2
    assert sorted(parts) == [0, 1]

    assert f"key id = SHA-256(raw public key) = `{independent_verifier.key_id(key)}`" in section
    # h_0 of each partition: the bytes shown hash to the value shown, which the verifier computes.
    for partition, start, h0 in re.findall(
        r"Partition (\d+): `h_0` = SHA-256 of `([0-9a-f]+)`\n= `([0-9a-f]{64})`", section
    ):
        assert independent_verifier.genesis2(audit_example.TOPIC, int(partition)).hex() == h0
        assert hashlib.sha256(bytes.fromhex(start)).hexdigest() == h0
    # Each record: its table's bytes are the verifier's canonical record, and h_prev, h are its chain.
    tables = re.findall(
        RECORD_TABLE,
        section,
        re.S,
    )
    assert len(tables) == len(audit_example.RECORDS) == len([e for e in explain if e.startswith("partition")])
    for (rows, previous, head), line in zip(tables, explain, strict=False):
        record = "".join(re.findall(r"\| `([0-9a-f ]*)` \|", rows)).replace(" ", "")
        assert line.endswith(f"record {record} h_prev {previous} h {head}")
    # The manifest message, and its signature over it.
    message = "".join(_group(r"covers:\n\n```\n(.*?)```", section).split())
    assert explain[-1] == f"manifest message {message}"
    signature = _group(r"signature \(deterministic, RFC 8032\): `([0-9a-f]{128})`", section)
    key.verify(bytes.fromhex(signature), bytes.fromhex(message))
