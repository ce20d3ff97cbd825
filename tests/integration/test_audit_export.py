"""Tamper evidence against a real broker: export participant-events, verify it, tamper a copy."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from services.audit.export import export_events
from services.audit.verify import VerificationError, check_export
from services.kafka import KafkaSettings
from services.ledger.export_format import read_export
from services.ledger.keys import generate, load_private_key, load_public_key
from tests import independent_verifier
from tests.integration.kafka_support import keyed, publish

EXAMPLE = Path(__file__).parents[2] / "examples" / "three-participants.jsonl"


async def test_an_export_of_the_example_verifies_and_a_tampered_copy_names_its_line(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    lines = [line for line in EXAMPLE.read_bytes().splitlines() if line.strip()]
    await publish(settings, keyed(lines))
    key_path = tmp_path / "audit.key"
    public_path, _ = generate(key_path)
    out = tmp_path / "events.export.jsonl"

    manifest = await export_events(settings, out, load_private_key(key_path))

    assert sum(p.count for p in manifest.positions) == len(lines)
    check_tamper_evidence(out, public_path, lines)


def check_tamper_evidence(out: Path, public_path: Path, lines: list[bytes]) -> None:
    """The export verifies and holds every published byte; a copy with one byte changed fails at its line."""
    tmp_path = out.parent
    verified = check_export(out, load_public_key(public_path))
    assert verified.records == len(lines)
    # The independent verifier, written from docs/audit-format.md alone, accepts it too.
    independent_verifier.verify(out.read_bytes(), load_public_key(public_path))
    assert sorted(r.value for r in read_export(out)) == sorted(lines)  # the exact bytes, every one
    assert not list(tmp_path.glob(".*.part"))  # the temporary file was renamed, not left behind

    exported = out.read_text("utf-8").splitlines()
    target = 3  # a record line: change one byte of the event it carries
    obj = json.loads(exported[target - 1])
    value = base64.b64decode(obj["value"]).replace(b'"schema_version": 1', b'"schema_version": 2')
    obj["value"] = base64.b64encode(value).decode()
    exported[target - 1] = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(line + "\n" for line in exported), "utf-8")
    with pytest.raises(VerificationError) as caught:
        check_export(tampered, load_public_key(public_path))
    assert caught.value.line == target
    with pytest.raises(independent_verifier.RefusedError):
        independent_verifier.verify(tampered.read_bytes(), load_public_key(public_path))
