"""``trialguard simulate --live`` on a real broker: the offline cohort's events, keyed by participant,
in event-time order; and a clean stop on SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest
from aiokafka import ConsumerRecord

from services import simulator
from services.kafka import KafkaSettings, read_to_end
from services.simulator.live import publish_live
from tests.integration.kafka_support import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

PARTICIPANTS, SEED, RATE = 8, 3, 0.5


def offline_lines(folder: Path, participants: int, seed: int, rate: float) -> list[str]:
    """What ``trialguard simulate --out`` writes for the cohort, in log order."""
    out = folder / f"offline-{seed}.jsonl"
    simulator.simulate(participants, seed, out, None, rate)
    return out.read_text(encoding="utf-8").splitlines()


def by_participant(lines: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for line in lines:
        grouped[json.loads(line)["participant_id"]].append(line)
    return dict(grouped)


def occurred(line: str | bytes) -> dt.datetime:
    return dt.datetime.fromisoformat(json.loads(line)["occurred_at"])


async def records(settings: KafkaSettings) -> list[ConsumerRecord[bytes, bytes]]:
    return [r async for r in read_to_end(settings, settings.topics.participant_events)]


def start_live(settings: KafkaSettings, participants: int, seed: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``trialguard simulate --live`` as a child process, slow enough to be stopped midway."""
    command = [sys.executable, "-m", "services.cli", "simulate", "--live", "--participants", str(participants),
               "--seed", str(seed), "--deviation-rate", str(RATE), "--minutes", "30",
               "--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


async def test_live_publishes_the_offline_cohort_in_event_time_order(settings: KafkaSettings, tmp_path: Path) -> None:
    expected = offline_lines(tmp_path, PARTICIPANTS, SEED, RATE)
    labels = tmp_path / "labels.json"

    # 0.02 minutes: the cohort's three years of event time in about a second, paced all the same.
    report = await publish_live(settings, PARTICIPANTS, SEED, RATE, minutes=0.02, labels_path=labels,
                                progress_seconds=0.2)  # fmt: skip
    assert report.published == len(expected)
    assert not report.stopped

    got: list[ConsumerRecord[bytes, bytes]] = []

    async def all_arrived() -> bool:
        nonlocal got
        got = await records(settings)
        return len(got) >= len(expected)

    await wait_for(all_arrived, f"{len(expected)} records on {settings.topics.participant_events}", timeout=60)

    for record in got:
        assert record.key is not None
        assert record.value is not None
        assert record.key.decode() == json.loads(record.value)["participant_id"]
    # The same events as offline, each participant's in the same order (hence in event-time order).
    arrived = by_participant([r.value.decode() for r in got if r.value is not None])
    assert arrived == by_participant(expected)
    for lines in arrived.values():
        times = [occurred(line) for line in lines]
        assert times == sorted(times)
    # Published in event-time order across participants: so each partition is in that order too.
    partitions: dict[int, list[dt.datetime]] = defaultdict(list)
    for record in sorted(got, key=lambda r: (r.partition, r.offset)):
        assert record.value is not None
        partitions[record.partition].append(occurred(record.value))
    assert len(partitions) > 1
    for times in partitions.values():
        assert times == sorted(times)
    assert {r for rules in json.loads(labels.read_text()).values() for r in rules}, "no deviation was injected"


async def test_live_stops_cleanly_on_sigterm(settings: KafkaSettings, tmp_path: Path) -> None:
    participants, seed = 20, 5
    expected = by_participant(offline_lines(tmp_path, participants, seed, RATE))
    log_path = tmp_path / "simulate-live.log"
    proc = start_live(settings, participants, seed, log_path)
    try:

        async def some_published() -> bool:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            return len(await records(settings)) > 0

        await wait_for(some_published, "the live simulator to publish its first events", timeout=60)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log_path.read_text(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log_text = log_path.read_text(errors="replace")
    assert "simulate.live.stopped" in log_text

    # Whatever was published before the stop is each participant's events from their first on.
    arrived = by_participant([r.value.decode() for r in await records(settings) if r.value is not None])
    total = sum(len(lines) for lines in expected.values())
    assert 0 < sum(len(lines) for lines in arrived.values()) < total
    for pid, lines in arrived.items():
        assert lines == expected[pid][: len(lines)]
