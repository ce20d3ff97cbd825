"""``trialguard export events --events LOG``: a signed export of a plain JSON-lines event log,
without a broker, which both verifiers accept and replay reads; bad input is refused by line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.verify import VerificationError, check_export
from services.cli import main
from services.ledger.export_format import is_export, participant_event_lines, read_export
from services.ledger.keys import generate, load_public_key
from tests import independent_verifier

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-participants.jsonl"


@pytest.fixture
def key(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    generate(path)
    return path


def _public(key: Path) -> Ed25519PublicKey:
    return load_public_key(key.with_name(key.name + ".pub"))


def test_a_plain_log_becomes_an_export_both_verifiers_accept(key: Path, tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    lines = EXAMPLE.read_bytes().splitlines()
    log.write_bytes(b"\n".join([*lines[:3], b"", *lines[3:]]) + b"\n")  # a blank line: a gap in the offsets
    out = tmp_path / "export.jsonl"

    assert main(["export", "events", "--events", str(log), "--key", str(key), "--out", str(out)]) == 0

    verified = check_export(out, _public(key))
    assert verified.format == 2
    assert verified.records == len(lines)
    fmt, parts, _ = independent_verifier.verify(out.read_bytes(), _public(key))
    assert (fmt, sorted(parts)) == (2, [0])
    records = list(read_export(out))
    assert [r.value for r in records] == lines  # the exact bytes of every line
    assert [r.offset for r in records] == [0, 1, 2, *range(4, len(lines) + 1)]  # positions as in the log
    first = json.loads(out.read_text().splitlines()[1])
    assert (first["partition"], first["key"], first["timestamp"], first["timestamp_type"]) == (0, None, -1, -1)
    manifest = json.loads(out.read_text().splitlines()[-1])
    assert manifest["study"] == "NCT06904729"
    assert [v for _, v in participant_event_lines(out)] == lines  # replay reads it as it reads the log


def test_a_line_that_is_no_event_is_named_and_nothing_is_written(
    key: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "events.jsonl"
    log.write_bytes(EXAMPLE.read_bytes().splitlines()[0] + b"\n[1, 2]\n")
    out = tmp_path / "export.jsonl"

    assert main(["export", "events", "--events", str(log), "--key", str(key), "--out", str(out)]) == 1

    assert f"{log}:2: not a JSON object" in capsys.readouterr().err
    assert not out.exists()
    assert not list(tmp_path.glob(".*.part"))


def test_an_export_given_as_the_log_is_signed_again_only_when_its_chains_hold(key: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.key"
    generate(other)
    export, again = tmp_path / "export.jsonl", tmp_path / "again.jsonl"
    assert main(["export", "events", "--events", str(EXAMPLE), "--key", str(key), "--out", str(export)]) == 0
    assert is_export(export)

    assert main(["export", "events", "--events", str(export), "--key", str(other), "--out", str(again)]) == 0
    assert check_export(again, _public(other)).records == check_export(export, _public(key)).records
    with pytest.raises(VerificationError):
        check_export(again, _public(key))  # signed by the other key now, and only by it

    lines = export.read_text().splitlines()
    record = json.loads(lines[2])
    record["timestamp"] = 0
    lines[2] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    export.write_text("".join(line + "\n" for line in lines))
    forged = tmp_path / "forged.jsonl"
    assert main(["export", "events", "--events", str(export), "--key", str(other), "--out", str(forged)]) == 1
    assert not forged.exists()
