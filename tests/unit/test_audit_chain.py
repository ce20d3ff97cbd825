"""Tamper evidence offline: the hash chain, the export format, keygen and verify, without a broker."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.export import reexport
from services.audit.verify import VerificationError, check_export
from services.ledger.chain import Chain, encode_record, genesis
from services.ledger.export_format import (
    ExportedRecord,
    ExportFormatError,
    checkpoint_line,
    parse_line,
    read_export,
    record_line,
)
from services.ledger.keys import KeyFileError, generate, key_id, load_private_key, load_public_key
from services.ledger.signatures import sign

TOPIC = "trialguard.NCT06904729.participant-events"

# (partition, offset, timestamp, key, value): offsets with gaps, as transaction markers leave them.
RECORDS = [
    (0, 0, 1_700_000_000_000, b"E-01", b'{"event":"one"}'),
    (0, 2, 1_700_000_000_500, b"E-02", b'{"event":"two"}'),
    (0, 3, 1_700_000_001_000, None, b'{"event":"three"}'),
    (1, 0, 1_700_000_000_100, b"E-03", b'{"event":"four"}'),
    (1, 5, 1_700_000_000_200, b"E-03", b"\x00\xffnot json"),
]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def export_lines(
    key: Ed25519PrivateKey = KEY, records: list[tuple[int, int, int, bytes | None, bytes]] = RECORDS
) -> list[str]:
    """An export of ``records`` as ``trialguard export events`` writes it: lines 1-5 records, 6-7 checkpoints."""
    chains: dict[int, Chain] = {}
    lines = []
    for partition, offset, ts, k, value in records:
        chain = chains.setdefault(partition, Chain(TOPIC, partition))
        head = chain.append(offset, ts, k, value)
        lines.append(record_line(ExportedRecord(TOPIC, partition, offset, ts, k, value, head.hex())))
    lines += [checkpoint_line(sign(chain, key)) for chain in chains.values()]
    return lines


def write(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "export.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def edit(number: int, field: str, change: Callable[[object], object]) -> Callable[[list[str]], list[str]]:
    """Change one field of line ``number`` (1-based), keeping the line canonical."""

    def apply(lines: list[str]) -> list[str]:
        obj = json.loads(lines[number - 1])
        obj[field] = change(obj[field])
        out = list(lines)
        out[number - 1] = json.dumps(obj, sort_keys=True, separators=(",", ":"))
        return out

    return apply


def b64_edit(data: object) -> object:
    raw = bytearray(base64.b64decode(str(data)))
    raw[0] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def swap(a: int, b: int) -> Callable[[list[str]], list[str]]:
    def apply(lines: list[str]) -> list[str]:
        out = list(lines)
        out[a - 1], out[b - 1] = out[b - 1], out[a - 1]
        return out

    return apply


def resign_with(key: Ed25519PrivateKey) -> Callable[[list[str]], list[str]]:
    """Rebuild the whole export, checkpoints signed by ``key``: a forger's consistent export."""
    return lambda lines: export_lines(key)


def forge_count(lines: list[str]) -> list[str]:
    """A checkpoint with a changed count, correctly re-signed by a key the verifier does not trust."""
    obj = json.loads(lines[5])
    obj["count"] += 1
    return [*lines[:5], json.dumps(obj, sort_keys=True, separators=(",", ":")), lines[6]]


TAMPERS: list[tuple[str, Callable[[list[str]], list[str]], int]] = [
    ("value byte", edit(2, "value", b64_edit), 2),
    ("key byte", edit(1, "key", b64_edit), 1),
    ("null key given", edit(3, "key", lambda _: base64.b64encode(b"E-09").decode()), 3),
    ("offset", edit(2, "offset", lambda o: int(str(o)) + 1), 2),
    ("timestamp", edit(4, "timestamp", lambda t: int(str(t)) - 1), 4),
    ("partition", edit(5, "partition", lambda _: 2), 5),
    ("chain value", edit(4, "chain", lambda c: "0" * 64), 4),
    ("raw byte in the JSON text", lambda ls: [ls[0].replace('"offset":0', '"offset":1'), *ls[1:]], 1),
    ("a space added", lambda ls: [ls[0], ls[1].replace(",", ", ", 1), *ls[2:]], 2),
    # "bg==" and "bh==" decode to the same bytes: only the canonical form check notices.
    ("base64 padding bits", lambda ls: [*ls[:4], ls[4].replace("AP9ub3QganNvbg==", "AP9ub3QganNvbh=="), *ls[5:]], 5),
    ("not JSON", lambda ls: [ls[0], ls[1][:-1], *ls[2:]], 2),
    ("removed line", lambda ls: [ls[0], *ls[2:]], 2),
    ("removed last record of a partition", lambda ls: [*ls[:2], *ls[3:]], 5),
    ("removed first line", lambda ls: ls[1:], 1),
    ("two lines swapped", swap(1, 2), 1),
    ("lines swapped across partitions", swap(3, 4), 4),
    ("inserted duplicate line", lambda ls: [*ls[:2], ls[1], *ls[2:]], 3),
    ("record after checkpoints", lambda ls: [*ls, ls[0]], 8),
    ("checkpoint head", edit(6, "head", lambda _: "ab" * 32), 6),
    ("checkpoint count", edit(6, "count", lambda c: int(str(c)) - 1), 6),
    ("checkpoint last offset", edit(7, "last_offset", lambda _: 4), 7),
    ("checkpoint signature", edit(7, "signature", b64_edit), 7),
    ("checkpoint key id", edit(6, "key_id", lambda _: key_id(OTHER_KEY.public_key())), 6),
    ("signed with another key", resign_with(OTHER_KEY), 6),
    ("checkpoints swapped", swap(6, 7), 7),
    ("checkpoint removed", lambda ls: ls[:6], 7),
    ("checkpoint duplicated", lambda ls: [*ls, ls[6]], 8),
    ("forged count", forge_count, 6),
    ("empty file", lambda ls: [], 1),
]


def test_an_untouched_export_verifies(tmp_path: Path) -> None:
    verified = check_export(write(tmp_path, export_lines()), KEY.public_key())
    assert verified.records == 5
    assert sorted(p for _, p in verified.checkpoints) == [0, 1]


@pytest.mark.parametrize(("name", "tamper", "line"), TAMPERS, ids=[t[0] for t in TAMPERS])
def test_a_tampered_export_names_the_first_line_that_breaks(
    tmp_path: Path, name: str, tamper: Callable[[list[str]], list[str]], line: int
) -> None:
    lines = export_lines()
    tampered = tamper(lines)
    assert tampered != lines, name
    with pytest.raises(VerificationError) as caught:
        check_export(write(tmp_path, tampered), KEY.public_key())
    assert caught.value.line == line, caught.value


def test_a_truncated_last_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "export.jsonl"
    path.write_text("\n".join(export_lines()), encoding="utf-8")  # no final newline
    with pytest.raises(VerificationError) as caught:
        check_export(path, KEY.public_key())
    assert caught.value.line == 7


def test_the_chain_starts_at_the_documented_genesis_and_links_sha256() -> None:
    assert genesis(TOPIC, 3) == hashlib.sha256(f"trialguard:{TOPIC}:3".encode()).digest()
    chain = Chain(TOPIC, 0)
    record = encode_record(TOPIC, 0, 7, 1, None, b"v")
    assert chain.append(7, 1, None, b"v") == hashlib.sha256(genesis(TOPIC, 0) + record).digest()
    assert (chain.count, chain.last_offset) == (1, 7)
    with pytest.raises(ValueError, match="does not follow"):
        chain.append(7, 1, None, b"v")


def test_the_record_encoding_is_unambiguous() -> None:
    # Moving a byte between key and value, or a null key against an empty one, must change the bytes.
    assert encode_record("t", 0, 0, 0, b"ab", b"c") != encode_record("t", 0, 0, 0, b"a", b"bc")
    assert encode_record("t", 0, 0, 0, None, b"") != encode_record("t", 0, 0, 0, b"", b"")


def test_read_export_yields_the_records_in_file_order_and_names_a_bad_line(tmp_path: Path) -> None:
    path = write(tmp_path, export_lines())
    records = list(read_export(path))
    assert [(r.partition, r.offset, r.key, r.value) for r in records] == [(p, o, k, v) for p, o, _, k, v in RECORDS]
    write(tmp_path, [*export_lines()[:2], '{"kind": "record"}', *export_lines()[2:]])
    with pytest.raises(ExportFormatError, match="line 3: missing field"):
        list(read_export(path))


def test_a_line_round_trips() -> None:
    line = export_lines()[2]
    assert record_line(parse_line(line, 1)) == line  # type: ignore[arg-type]


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "audit.key"
    pub, kid = generate(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert pub == tmp_path / "audit.key.pub"
    assert key_id(load_public_key(pub)) == kid == key_id(load_private_key(out).public_key())
    before = out.read_bytes()
    with pytest.raises(FileExistsError):
        generate(out)
    assert out.read_bytes() == before


def test_a_private_key_is_no_public_key_and_garbage_is_no_key(tmp_path: Path) -> None:
    out = tmp_path / "k"
    generate(out)
    with pytest.raises(KeyFileError, match="not a PEM public key"):
        load_public_key(out)
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(KeyFileError):
        load_private_key(tmp_path / "junk")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_public_key(tmp_path / "absent.pub")


def test_an_export_signed_with_another_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(VerificationError, match="not the given public key"):
        check_export(write(tmp_path, export_lines(OTHER_KEY)), KEY.public_key())


def test_an_export_signed_again_offline_verifies_with_the_new_key(tmp_path: Path) -> None:
    source = write(tmp_path, export_lines())
    out = tmp_path / "resigned.jsonl"
    checkpoints = reexport(source, out, OTHER_KEY)
    assert [c.count for c in checkpoints] == [3, 2]
    assert check_export(out, OTHER_KEY.public_key()).records == 5


def test_a_changed_export_is_never_signed_again(tmp_path: Path) -> None:
    lines = export_lines()
    lines[1], lines[2] = lines[2], lines[1]
    out = tmp_path / "resigned.jsonl"
    with pytest.raises(ExportFormatError, match="line 2"):
        reexport(write(tmp_path, lines), out, OTHER_KEY)
    assert not out.exists()
