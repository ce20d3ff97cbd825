"""Audit on a real broker: an export checked against the live checkpoints the rules service
signed, by ``trialguard audit verify --bootstrap-servers`` and by the independent verifier (fed
the same checkpoint records). An older export presented as current is a rollback; declared "as
of" its last checkpoint it is accepted, with every later checkpoint reported beyond it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from services.audit.export import export_events
from services.audit.live_check import compare_live
from services.audit.verify import check_export
from services.cli import main
from services.kafka import KafkaSettings, read_to_end
from services.ledger.keys import generate, load_private_key, load_public_key, public_path
from services.rules import RulesService
from tests import independent_verifier
from tests.integration.kafka_support import keyed, publish, run_until_consumed
from tests.integration.test_amendment_live import HISTORY

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-participants.jsonl"


async def _checkpoints(settings: KafkaSettings) -> list[tuple[int, bytes]]:
    return [(r.offset, r.value or b"") async for r in read_to_end(settings, settings.topics.audit_checkpoints)]


def _independent(
    export: Path, key: Ed25519PublicKey, checkpoints: list[tuple[int, bytes]], as_of: int | None = None
) -> tuple[bool, str | list[str]]:
    try:
        fmt, parts, _ = independent_verifier.verify(export.read_bytes(), key)
        return True, independent_verifier.compare_live(fmt, parts, checkpoints, key, as_of)
    except independent_verifier.RefusedError as e:
        return False, str(e)


async def test_an_older_export_is_a_rollback_unless_declared_as_of_its_checkpoint(
    settings: KafkaSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "audit.key"
    generate(key)
    public = load_public_key(public_path(key))
    lines = [line for line in EXAMPLE.read_bytes().splitlines() if line.strip()]
    await publish(settings, keyed(lines[:60]))
    await run_until_consumed(RulesService(settings, HISTORY, audit_key=key, checkpoint_every=5), settings)
    older = tmp_path / "older.jsonl"
    await export_events(settings, older, load_private_key(key))
    then = await _checkpoints(settings)
    assert then, "no checkpoint was written"
    as_of = then[-1][0]

    # As made, the export holds every checkpoint signed so far: both verifiers agree with it.
    verified = check_export(older, public)
    live = await compare_live(settings, settings.topics.audit_checkpoints, verified, public)
    assert (live.problems, live.beyond, live.compared) == ([], [], len(then))
    assert _independent(older, public, then) == (True, [])

    # The log grows and the rules service signs further checkpoints.
    await publish(settings, keyed(lines[60:]))
    await run_until_consumed(RulesService(settings, HISTORY, audit_key=key, checkpoint_every=5), settings)
    now = await _checkpoints(settings)
    later = [offset for offset, _ in now if offset > as_of]
    assert later, "no checkpoint beyond the older export"

    # Presented as current, the older export is a rollback: every later checkpoint is named.
    broker = ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    verify = ["audit", "verify", str(older), "--public-key", str(public_path(key)), *broker]
    assert await asyncio.to_thread(main, verify) == 1
    err = capsys.readouterr().err
    assert all(f"audit-checkpoints offset {offset} " in err for offset in later)
    assert err.count("a rollback") == len(later)
    accepted, said = _independent(older, public, now)
    assert not accepted
    assert "rollback" in str(said)

    # Declared as of its last checkpoint, it is accepted and every later checkpoint reported.
    assert await asyncio.to_thread(main, [*verify, "--as-of-checkpoint", str(as_of)]) == 0
    out = capsys.readouterr().out
    assert all(f"audit-checkpoints offset {offset} " in out for offset in later)
    assert f"{len(then)} live checkpoints agree with the export; {len(later)} beyond its as-of checkpoint" in out
    accepted, beyond = _independent(older, public, now, as_of)
    assert accepted
    assert len(beyond) == len(later)

    # An as-of point after the export's end does not make it complete.
    assert await asyncio.to_thread(main, [*verify, "--as-of-checkpoint", str(now[-1][0])]) == 1
    assert not _independent(older, public, now, now[-1][0])[0]

    # A new export holds every checkpoint; both verifiers agree with it.
    current = tmp_path / "current.jsonl"
    await export_events(settings, current, load_private_key(key))
    assert (
        await asyncio.to_thread(main, ["audit", "verify", str(current), "--public-key", str(public_path(key)), *broker])
        == 0
    )
    assert f"{len(now)} live checkpoints agree with the export; 0 beyond" in capsys.readouterr().out
    assert _independent(current, public, now) == (True, [])

    # Checked against another study's live checkpoints, the export is refused, naming both topics.
    other = "NCT06946485" if settings.study_id != "NCT06946485" else "NCT06904729"
    verify_current = ["audit", "verify", str(current), "--public-key", str(public_path(key)), *broker]
    assert await asyncio.to_thread(main, [*verify_current, "--study", other]) == 1
    err = capsys.readouterr().err
    assert f"the export signs topic {settings.topics.participant_events}" in err
    assert f"--study {other}" in err
