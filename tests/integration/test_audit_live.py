"""Audit, live on a real broker: the rules service's signed hash-chain checkpoints agree with an
export made later (also across a restart of the service), and a shadow run of a candidate version
writes only topics of its own."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from contracts import encode
from protocol import ProtocolHistory
from services.audit.export import export_events
from services.audit.verify import check_export, check_live
from services.cli import main
from services.kafka import KafkaSettings, read_to_end
from services.ledger.keys import generate, load_private_key, load_public_key, public_path
from services.rules import RulesService
from tests import independent_verifier
from tests.integration.kafka_support import findings, keyed, publish, run_until_consumed
from tests.integration.test_amendment_live import HISTORY, stream

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "three-participants.jsonl"


async def _checkpoints(settings: KafkaSettings) -> list[dict[str, object]]:
    return [json.loads(r.value or b"") async for r in read_to_end(settings, settings.topics.audit_checkpoints)]


async def test_live_checkpoints_agree_with_a_later_export_across_a_restart(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    key = tmp_path / "audit.key"
    generate(key)
    lines = EXAMPLE.read_bytes().splitlines()
    await publish(settings, keyed(lines[:60]))
    await run_until_consumed(RulesService(settings, HISTORY, audit_key=key, checkpoint_every=5), settings)
    first = await _checkpoints(settings)
    assert first, "no checkpoint was written"

    # A new instance restores each partition's chain from its last checkpoint and goes on.
    await publish(settings, keyed(lines[60:]))
    await run_until_consumed(RulesService(settings, HISTORY, audit_key=key, checkpoint_every=5), settings)
    everything = await _checkpoints(settings)
    assert len(everything) > len(first)

    export = tmp_path / "events.jsonl"
    await export_events(settings, export, load_private_key(key))
    public_key = load_public_key(public_path(key))
    verified = check_export(export, public_key)
    assert verified.records == len(lines)
    compared, problems = await check_live(settings, settings.topics.audit_checkpoints, verified, public_key)
    assert problems == []
    assert compared == len(everything)
    # The independent verifier agrees, given the same checkpoint records.
    values = [(r.offset, r.value or b"") async for r in read_to_end(settings, settings.topics.audit_checkpoints)]
    fmt, parts, _ = independent_verifier.verify(export.read_bytes(), public_key)
    assert independent_verifier.compare_live(fmt, parts, values, public_key, None) == []


async def test_a_shadow_run_writes_only_its_own_topics(settings: KafkaSettings) -> None:
    events = stream()
    await publish(settings, [(e.participant_id.encode(), encode(e)) for e in events])
    await run_until_consumed(RulesService(settings, HISTORY), settings)
    live_before = await findings(settings)

    # The candidate: v1.0 alone, without the amendment the live history has from 2025-12-13.
    shadow = replace(settings, shadow="1.0")
    await run_until_consumed(RulesService(shadow, ProtocolHistory.of(HISTORY.version("1.0"))), shadow)

    assert await findings(settings) == live_before, "the shadow run touched the live findings"
    assert shadow.topics.deviations == f"{settings.namespace}.NCT06904729.shadow.1.0.deviations"
    assert [(f["participant_id"], f["rule_id"]) for f in live_before] == [("P-0001", "ELIG-MISSING")]
    shadowed = await findings(shadow)
    # Under v1.0 throughout, P-0002's 29-day-old labs are outdated too.
    assert sorted((f["participant_id"], f["rule_id"]) for f in shadowed) == [
        ("P-0001", "ELIG-MISSING"),
        ("P-0002", "ELIG-MISSING"),
    ]
    options = ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    differs = await asyncio.to_thread(main, ["audit", "diff", "--shadow", "1.0", "--format", "json", *options])
    assert differs == 1, "audit diff --shadow must report what the candidate raises differently"
