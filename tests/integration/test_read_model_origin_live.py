"""The read model on two real brokers: offsets read from one are not applied to the other (the
"Not in the read model yet" of issue 20: a dashboard kept offsets across a broker change and
skipped every record below them)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from services.dashboard.store import ReadModel
from services.kafka import KafkaSettings, cluster_id, ensure_topics
from tests.integration.test_dashboard_read_model import _ids, _produce, _run_until
from tests.processes import Broker
from tests.unit.test_read_model import _finding

pytestmark = pytest.mark.integration


async def test_a_read_model_of_another_broker_is_rebuilt_not_skipped(settings: KafkaSettings, tmp_path: Path) -> None:
    await ensure_topics(settings)
    await _produce(settings, [_finding(n) for n in range(30)])
    store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
    await _run_until(settings, store, 30)
    assert store.meta("kafka_cluster_id") == await cluster_id(settings)

    other = Broker(tmp_path / "kafka-b")
    await asyncio.to_thread(other.up)
    try:
        moved = dataclasses.replace(settings, bootstrap_servers=other.bootstrap)
        assert await cluster_id(moved) != await cluster_id(settings)
        await ensure_topics(moved)
        # Fewer records than the stored offsets: kept offsets would skip every one of them.
        await _produce(moved, [_finding(100 + n) for n in range(8)])
        await _run_until(moved, store, 8)
        assert _ids(store) == sorted(str(uuid.UUID(int=100 + n)) for n in range(8))
        assert store.meta("kafka_cluster_id") == await cluster_id(moved)
    finally:
        await asyncio.to_thread(other.down)


async def test_a_read_model_of_another_namespace_is_rebuilt(settings: KafkaSettings, tmp_path: Path) -> None:
    await ensure_topics(settings)
    await _produce(settings, [_finding(n) for n in range(20)])
    store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
    await _run_until(settings, store, 20)

    renamed = dataclasses.replace(settings, namespace=f"test-{uuid.uuid4().hex[:10]}")
    await ensure_topics(renamed)
    await _produce(renamed, [_finding(200 + n) for n in range(4)])
    store.topics = renamed.topics
    await _run_until(renamed, store, 4)
    assert _ids(store) == sorted(str(uuid.UUID(int=200 + n)) for n in range(4))
    assert store.meta("topic_namespace") == renamed.namespace
