"""Both installed studies on one broker, served by ONE rules service process: each study's cohort,
simulated live by the real CLI, gives on its own deviations topic exactly what the offline replay
of that study gives, and nothing of one study reaches the other's topics."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from contracts import encode, parse_event
from events.replay import Replay
from protocol.registry import versions_for
from services import simulator
from services.kafka import KafkaSettings
from services.simulator.scripted_live import write_in_log_order
from tests.integration.cohort import same_findings
from tests.integration.kafka_support import dead_letters, findings, http_get, metric, wait_until_consumed
from tests.processes import ROOT, ServiceProcess

pytestmark = pytest.mark.integration

FIRST, SECOND = "NCT06904729", "NCT06946485"
PARTICIPANTS, SEED, RATE = 12, 11, 0.6


def simulate_live(settings: KafkaSettings, log_path: Path) -> None:
    """``trialguard simulate --live --minutes 0`` for the settings' study, to the end."""
    command = [sys.executable, "-m", "services.cli", "simulate", "--live", "--minutes", "0",
               "--participants", str(PARTICIPANTS), "--seed", str(SEED), "--deviation-rate", str(RATE),
               "--study", settings.study_id, "--bootstrap-servers", settings.bootstrap_servers,
               "--namespace", settings.namespace]  # fmt: skip
    with log_path.open("wb") as log:
        subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True, timeout=300)


def replayed(study: str, lines: list[str]) -> list[dict[str, Any]]:
    """What `trialguard replay --study` makes of the events, in the order they were published."""
    replay = Replay(versions_for(study))
    return [json.loads(encode(f)) for line in lines for f in replay.feed(parse_event(line))]


def published_lines(study: str, folder: Path) -> list[str]:
    """The cohort `simulate --live` publishes for ``study``, in its publishing order."""
    out = folder / f"{study}.jsonl"
    if study == FIRST:
        simulator.simulate(PARTICIPANTS, SEED, out, None, RATE)
    else:
        write_in_log_order(study, PARTICIPANTS, SEED, RATE, out, None)
    return out.read_text(encoding="utf-8").splitlines()


async def test_one_service_serves_both_studies_each_equal_to_its_replay(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    first, second = replace(settings, study_id=FIRST), replace(settings, study_id=SECOND)
    service = ServiceProcess(first, tmp_path / "rules.log", also_studies=(SECOND,)).start()
    try:
        for study_settings in (first, second):
            simulate_live(study_settings, tmp_path / f"simulate-{study_settings.study_id}.log")
        for study_settings in (first, second):
            await wait_until_consumed(study_settings, service.check_alive)

        for study_settings in (first, second):
            study = study_settings.study_id
            expected = replayed(study, published_lines(study, tmp_path))
            assert expected, f"the {study} cohort raised nothing: the test would prove nothing"
            live = await findings(study_settings)
            same_findings(live, expected)
            assert {f["study_id"] for f in live} == {study}
            assert await dead_letters(study_settings) == []

        status, body = await http_get(service.http_port, "/health")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        _, text = await http_get(service.http_port, "/metrics")
        for study_settings in (first, second):
            study = study_settings.study_id
            consumed = [line for line in text.splitlines() if f'study="{study}"' in line]
            assert metric("\n".join(consumed), "trialguard_events_consumed_total") == len(
                published_lines(study, tmp_path)
            )
        service.check_alive()
    finally:
        assert service.stop() == 0, service.log()[-3000:]
