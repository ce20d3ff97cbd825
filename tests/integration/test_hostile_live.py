"""The live fuzz variant: a few hundred hostile records between good events on a real broker.

The service stays up, every hostile record is on the dead-letter topic with its reason, the good
events' findings equal the offline replay, the metrics reconcile, and no log line repeats what
the input carried.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable

import pytest

from services.kafka import KafkaSettings
from services.rules import MAX_HEADER_CHARS
from tests.hostile import hostile_records
from tests.integration.cohort import replayed, same_findings, simulated
from tests.integration.conftest import REPORT, ServiceProcess, seed_for
from tests.integration.kafka_support import (
    dead_letters,
    findings,
    http_get,
    keyed,
    metric,
    publish,
    wait_until_consumed,
)

pytestmark = pytest.mark.integration

HOSTILE = 300


async def test_hostile_records_between_good_events(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], tmp_path_factory: pytest.TempPathFactory
) -> None:
    rng = random.Random(seed_for("live fuzz"))
    good = simulated(tmp_path_factory.mktemp("cohort"), 60, 5, 3_000)
    hostile = hostile_records(rng, good, HOSTILE)
    participants = sorted({key for key, _ in keyed(good)})
    messages: list[tuple[bytes | None, bytes]] = list(keyed(good))
    for value in hostile:
        key = rng.choice([*participants[:5], None, b"\xff\xfe", b""])
        messages.insert(rng.randrange(len(messages) + 1), (key, value))
    service = rules_service()
    await publish(settings, messages)
    await wait_until_consumed(settings, service.check_alive)

    same_findings(await findings(settings), replayed(good))
    rejected = await dead_letters(settings)
    assert sorted(r.value or b"" for r in rejected) == sorted(hostile)
    for record in rejected:
        reason = dict(record.headers)["trialguard.error"].decode()
        assert 0 < len(reason) <= MAX_HEADER_CHARS

    status, health = await http_get(service.http_port, "/health")
    assert (status, json.loads(health)) == (200, {"status": "ready"})
    _, text = await http_get(service.http_port, "/metrics")
    consumed = metric(text, "trialguard_events_consumed_total")
    dead = metric(text, "trialguard_events_dead_lettered_total")
    assert consumed == len(messages)
    assert consumed == metric(text, "trialguard_events_processed_total") + dead
    assert dead == len(hostile)
    longest = max(map(len, service.log().splitlines()))
    assert longest < 2_000, "a log line repeats input: every line is ids, kinds and counts"
    REPORT.append(f"live fuzz: {len(good)} good events, {len(hostile)} hostile records, all dead-lettered; "
                  f"longest log line {longest} characters")  # fmt: skip
