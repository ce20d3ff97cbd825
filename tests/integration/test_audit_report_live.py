"""The audit report from a real broker and from an export of it, with every check passing, and
from a tampered export, naming the line that breaks."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from protocol.registry import versions_for
from services.cli import main
from services.kafka import KafkaSettings
from services.ledger.keys import generate, public_path
from services.rules import RulesService
from tests.integration.kafka_support import keyed, publish, run_until_consumed

pytestmark = pytest.mark.integration


async def test_the_report_states_what_was_checked_from_the_broker_and_from_an_export(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    cohort = tmp_path / "cohort.jsonl"
    subprocess.run(
        [sys.executable, "-m", "services.cli", "simulate", "--participants", "30", "--seed", "9", "--out", str(cohort)],
        check=True,
        capture_output=True,
    )
    await publish(settings, keyed(cohort.read_bytes().splitlines()))
    key = tmp_path / "audit.key"
    generate(key)
    service = RulesService(settings, versions_for(settings.study_id), audit_key=key, checkpoint_every=200)
    await run_until_consumed(service, settings)
    broker = ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    public = str(public_path(key))

    live = tmp_path / "live.html"
    assert await asyncio.to_thread(main, ["audit", "report", "--out", str(live), "--public-key", public, *broker]) == 0
    html = live.read_text()
    assert html.count("PASSED") == 2, "the chain against the live checkpoints, and the diff"
    assert "live checkpoints compared" in html

    export = tmp_path / "events.jsonl"
    assert await asyncio.to_thread(main, ["export", "events", "--out", str(export), "--key", str(key), *broker]) == 0
    offline = tmp_path / "offline.html"
    code = await asyncio.to_thread(
        main, ["audit", "report", "--out", str(offline), "--events", str(export), "--public-key", public]
    )
    assert code == 0
    assert "chains and signed manifest hold" in offline.read_text()

    lines = export.read_bytes().splitlines(keepends=True)
    lines[9], lines[10] = lines[10], lines[9]
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(b"".join(lines))
    report = tmp_path / "tampered.html"
    code = await asyncio.to_thread(
        main, ["audit", "report", "--out", str(report), "--events", str(tampered), "--public-key", public]
    )
    assert code == 1
    assert f"{tampered.name}:10:" in report.read_text()
