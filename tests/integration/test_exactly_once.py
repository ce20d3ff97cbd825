"""Exactly once on a real broker: kill -9 at random points, two instances sharing the work, restore
from snapshot rounds (with and without a tail of records after the last round), duplicates and
poison mid-stream. The committed findings must always equal an offline replay of the same events:
none duplicated, none missing."""

from __future__ import annotations

import json
import random
import signal
from collections.abc import Callable
from typing import Any

import pytest

from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings, read_partition
from services.rules import RecordHandler, rebuild_from_log, restore
from tests.integration.cohort import replayed, same_findings, simulated
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import (
    committed_offsets,
    dead_letters,
    findings,
    http_get,
    keyed,
    metric,
    publish,
    wait_committed,
    wait_until_consumed,
)

pytestmark = pytest.mark.integration

STREAM_EVENTS = 20_000


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """The first 20,000 events of a simulated cohort, in log order."""
    return simulated(tmp_path_factory.mktemp("cohort"), 260, 11, STREAM_EVENTS)


async def test_kill_9_at_random_points_loses_and_duplicates_nothing(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], stream: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TRIALGUARD_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("TRIALGUARD_SNAPSHOT_EVERY", "1500")  # a chunk is ~750 records a partition: kills between rounds
    chance = random.Random(20251125)
    chunks = [stream[i : i + 3_000] for i in range(0, len(stream), 3_000)]  # 7 chunks
    service = rules_service()
    published = kills = 0
    for number, chunk in enumerate(chunks):
        await publish(settings, keyed(chunk))
        if number < 6:
            # Kill somewhere inside this chunk's processing, at a random point.
            await wait_committed(settings, published + int(len(chunk) * chance.uniform(0.1, 0.9)), service)
            service.stop(signal.SIGKILL)
            kills += 1
            service = rules_service()
        published += len(chunk)
    await wait_until_consumed(settings, service.check_alive)

    assert kills >= 5
    same_findings(await findings(settings), replayed(stream))
    assert await dead_letters(settings) == []
    tails = [r["tail_records"] for r in restored_partitions(service)]
    assert any(tails), "some take-over processed records after the last snapshot round again"


async def test_two_instances_one_killed_mid_stream_lose_and_duplicate_nothing(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], stream: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TRIALGUARD_SESSION_TIMEOUT_MS", "6000")
    first, second = rules_service(), rules_service()
    await publish(settings, keyed(stream))
    await wait_committed(settings, len(stream) // 3, first, second)
    first.stop(signal.SIGKILL)  # its partitions move to the second once its session expires
    await wait_until_consumed(settings, second.check_alive)

    same_findings(await findings(settings), replayed(stream))
    restored = restored_partitions(second)
    assert {r["partition"] for r in restored} == {0, 1, 2, 3}, "the second instance took over every partition"


def restored_partitions(service: ServiceProcess) -> list[dict[str, Any]]:
    """The ``partition_restored`` lines of the service's log (of every process that wrote to it)."""
    return [json.loads(line) for line in service.log().splitlines() if '"partition_restored"' in line]


async def test_restore_after_a_graceful_stop_equals_a_rebuild_from_offset_0_and_reads_less(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], stream: list[bytes]
) -> None:
    service = rules_service()
    await publish(settings, keyed(stream[:6_000]))
    await wait_until_consumed(settings, service.check_alive)
    service.stop()  # a graceful stop writes a last round at the committed offsets

    committed = await committed_offsets(settings)
    handler = RecordHandler(settings, PROTOCOL)
    for partition, upto in sorted(committed.items()):
        restored = await restore(settings, handler, partition, upto)
        rebuilt, events_read = await rebuild_from_log(settings, handler, partition, upto)
        assert restored.states == rebuilt, f"partition {partition}"
        assert (restored.round_offset, restored.events_read, restored.changed) == (upto, 0, set())
        assert restored.snapshots_read < events_read, f"partition {partition}: restore read no less than a rebuild"


async def test_an_older_round_plus_the_tail_equals_a_rebuild_and_a_kill_9_between_rounds_duplicates_nothing(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], stream: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TRIALGUARD_SNAPSHOT_EVERY", "1000")
    first, tail, rest = stream[:6_000], stream[6_000:6_400], stream[6_400:9_000]
    service = rules_service()
    await publish(settings, keyed(first))
    await wait_until_consumed(settings, service.check_alive)
    service.stop()  # a last round at the committed offsets
    rounds = await committed_offsets(settings)

    service = rules_service()  # about 100 records a partition after the last round: no round is due
    await publish(settings, keyed(tail))
    await wait_until_consumed(settings, service.check_alive)
    service.stop(signal.SIGKILL)

    committed = await committed_offsets(settings)
    handler = RecordHandler(settings, PROTOCOL)
    for partition, upto in sorted(committed.items()):
        restored = await restore(settings, handler, partition, upto)
        rebuilt, events_read = await rebuild_from_log(settings, handler, partition, upto)
        assert restored.round_offset == rounds[partition] < upto, f"partition {partition}: the last round is older"
        assert restored.states == rebuilt, f"partition {partition}"
        assert restored.events_read == upto - rounds[partition]
        topic = settings.topics.participant_events
        after = [r async for r in read_partition(settings, topic, partition, rounds[partition])]
        assert restored.changed == {(r.key or b"").decode() for r in after if r.offset < upto}, "marked changed"
        assert restored.snapshots_read + restored.events_read < events_read, f"partition {partition}"

    service = rules_service()
    await publish(settings, keyed(tail) + keyed(rest))  # the tail's events again (retried publishes), then more
    await wait_until_consumed(settings, service.check_alive)
    same_findings(await findings(settings), replayed(stream[:9_000]))
    last = restored_partitions(service)[-4:]
    assert sorted(r["partition"] for r in last) == [0, 1, 2, 3]
    assert all(r["tail_records"] == committed[r["partition"]] - rounds[r["partition"]] for r in last)


async def test_duplicates_and_poison_mid_stream(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], stream: list[bytes]
) -> None:
    events = stream[:4_000]
    chance = random.Random(7)
    poison: list[tuple[bytes | None, bytes]] = [
        (b"P-X", b"\x00\xff not even UTF-8"),
        (b"P-X", b'{"event_type": "ScreeningLabResulted"'),
        (None, events[10]),  # no key
        (b"P-wrong", events[11]),  # the key is not the participant
    ]
    messages: list[tuple[bytes | None, bytes]] = list(keyed(events))
    for duplicate in chance.sample(keyed(events[:3_000]), 400):  # retried publishes, later in the log
        messages.insert(chance.randrange(3_000, len(messages)), duplicate)
    for bad in poison:
        messages.insert(chance.randrange(1_000, 3_000), bad)
    service = rules_service()
    await publish(settings, messages)
    await wait_until_consumed(settings, service.check_alive)

    same_findings(await findings(settings), replayed(events))
    rejected = await dead_letters(settings)
    assert sorted(r.value for r in rejected) == sorted(value for _, value in poison)
    for record in rejected:
        headers = dict(record.headers)
        assert headers["trialguard.error"]
        assert headers["trialguard.source.topic"] == settings.topics.participant_events.encode()
        assert int(headers["trialguard.source.offset"]) >= 0

    status, health = await http_get(service.http_port, "/health")
    assert (status, json.loads(health)) == (200, {"status": "ready"})
    _, text = await http_get(service.http_port, "/metrics")
    consumed = metric(text, "trialguard_events_consumed_total")
    assert consumed == len(messages)
    assert consumed == metric(text, "trialguard_events_processed_total") + metric(
        text, "trialguard_events_dead_lettered_total"
    )
    assert metric(text, "trialguard_events_dead_lettered_total") == len(poison)
    assert metric(text, "trialguard_findings_total") == len(replayed(events))
