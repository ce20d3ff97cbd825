"""``trialguard audit replay`` and ``audit diff`` against the live rules service on a real broker.

A simulated cohort is published in two phases, the live service consumes it, and the recomputed
findings must be exactly the committed ones; a forged finding on the deviations topic is caught
as extra; ``--as-of`` a time between the phases sees only the first phase.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from services.kafka import KafkaSettings, read_to_end
from tests.integration.kafka_support import findings, keyed, publish, wait_until_consumed
from tests.processes import ROOT, ServiceProcess, cli_command

pytestmark = pytest.mark.integration


async def trialguard(settings: KafkaSettings, *command: str) -> tuple[int, bytes, str]:
    """Run ``trialguard COMMAND…`` on the test's topics: (exit status, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        *cli_command(settings, *command), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out, err.decode()


async def diff_json(settings: KafkaSettings, *options: str) -> tuple[int, dict[str, Any]]:
    code, out, err = await trialguard(settings, "audit", "diff", "--format", "json", *options)
    assert code in (0, 1), err
    return code, json.loads(out)


async def timestamp_types(settings: KafkaSettings) -> set[int]:
    """The timestamp types of participant-events' records (0 CreateTime, 1 LogAppendTime)."""
    topic = settings.topics.participant_events
    return {r.timestamp_type async for r in read_to_end(settings, topic)}


async def test_recomputed_findings_are_the_committed_ones(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    simulate = [sys.executable, "-m", "services.cli", "simulate", "--participants", "40", "--seed", "3"]
    proc = await asyncio.create_subprocess_exec(*simulate, "--out", str(events), cwd=ROOT, stderr=subprocess.DEVNULL)
    assert await proc.wait() == 0
    lines = [line for line in events.read_bytes().splitlines() if line.strip()]
    half = len(lines) // 2

    # Two phases, with a moment between them that no record's timestamp shares.
    await publish(settings, keyed(lines[:half]))
    await asyncio.sleep(0.05)
    between = dt.datetime.now(dt.UTC)
    await asyncio.sleep(0.05)
    await publish(settings, keyed(lines[half:]))
    assert await timestamp_types(settings) == {1}  # LogAppendTime, the broker's: what --as-of relies on

    service = rules_service()
    await wait_until_consumed(settings, service.check_alive)
    committed = await findings(settings)
    assert committed, "the cohort raises findings"

    # audit replay gives what `trialguard replay` gives offline, from the topic.
    code, out, err = await trialguard(settings, "audit", "replay")
    assert code == 0, err
    offline = tmp_path / "offline.jsonl"
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "services.cli", "replay", str(events), "--out", str(offline)],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    assert await proc.wait() == 0
    assert sorted(out.splitlines()) == sorted(offline.read_bytes().splitlines())
    assert f"records read {len(lines)}" in " ".join(err.split())

    code, report = await diff_json(settings)
    assert code == 0, report
    assert report["same"] == len(committed)

    # As of the moment between the phases: fewer findings, and those the service had raised for them.
    code, out, err = await trialguard(settings, "audit", "replay", "--as-of", between.isoformat())
    assert code == 0, err
    assert 0 < len(out.splitlines()) < len(committed)
    code, report = await diff_json(settings, "--as-of", between.isoformat())
    assert code == 0, report
    assert report["same"] == len(out.splitlines())

    # A forged finding published straight to the deviations topic is extra.
    forged = {**committed[0], "deviation_id": "00000000-0000-4000-8000-000000000000", "alert_id": None}
    forged = {k: v for k, v in forged.items() if v is not None}
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.deviations, json.dumps(forged).encode(), key=b"forged")
    finally:
        await producer.stop()
    code, report = await diff_json(settings)
    assert code == 1
    assert [f["deviation_id"] for f in report["extra"]] == [forged["deviation_id"]]
    assert not report["missing"]
    assert not report["changed"]
    assert report["by_rule"][forged["rule_id"]]["extra"] == 1
    code, table, _ = await trialguard(settings, "audit", "diff")
    assert code == 1
    assert b"DIFFERENT" in table
    assert forged["deviation_id"].encode() in table

    # A shadow topic that was never created is a usage error, not a difference.
    code, _, err = await trialguard(settings, "audit", "diff", "--shadow", "9.9")
    assert code == 2, err
    assert "does not exist" in err
