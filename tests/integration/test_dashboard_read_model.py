"""The dashboard's read model on a real broker: read_committed, resume where it stopped, rebuild."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.store import Applied, ReadModel
from services.kafka import KafkaSettings, ensure_topics
from tests.integration.kafka_support import wait_for
from tests.processes import Broker
from tests.unit.test_read_model import _finding

N = 40


async def _produce(settings: KafkaSettings, findings: list[dict[str, Any]], *, abort: bool = False) -> None:
    """Findings in one transaction, committed or aborted (as the rules service writes them)."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), transactional_id=f"test-{uuid.uuid4().hex}")
    await producer.start()
    try:
        await producer.begin_transaction()
        for finding in findings:
            key = finding["participant_id"].encode()
            await producer.send(settings.topics.deviations, json.dumps(finding).encode(), key=key)
        if abort:
            await producer.abort_transaction()
        else:
            await producer.commit_transaction()
    finally:
        await producer.stop()


async def _run_until(settings: KafkaSettings, store: ReadModel, expected: int) -> list[Applied]:
    """Start the consumers, wait until the read model holds ``expected`` findings, stop them."""
    batches: list[Applied] = []
    consumer = ReadModelConsumer(settings, store, batches.append)
    await consumer.start()
    try:

        async def caught_up() -> bool:
            with store.reader() as db:
                return int(db.execute("SELECT count(*) FROM findings").fetchone()[0]) >= expected

        await wait_for(caught_up, f"{expected} findings in the read model", timeout=60)
    finally:
        await consumer.stop()
    return batches


def _ids(store: ReadModel) -> list[str]:
    with store.reader() as db:
        return [row[0] for row in db.execute("SELECT finding_id FROM findings ORDER BY finding_id").fetchall()]


async def test_only_committed_findings_are_read_and_a_restart_resumes_where_it_stopped(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    await ensure_topics(settings)
    committed = [_finding(n) for n in range(N)]
    await _produce(settings, committed[: N // 2])
    await _produce(settings, [_finding(1000 + n) for n in range(5)], abort=True)
    store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
    first = await _run_until(settings, store, N // 2)
    assert sum(len(b.findings) for b in first) == N // 2

    await _produce(settings, committed[N // 2 :])
    second = await _run_until(settings, store, N)
    assert sum(len(b.findings) for b in second) == N // 2, "the restart re-read what it had already stored"
    assert _ids(store) == sorted(str(uuid.UUID(int=n)) for n in range(N)), "an aborted finding was read"

    rebuilt = ReadModel(tmp_path / "rebuilt.sqlite3", settings.topics)
    await _run_until(settings, rebuilt, N)
    assert _ids(rebuilt) == _ids(store)
    assert rebuilt.offsets(settings.topics.deviations) == store.offsets(settings.topics.deviations)


async def test_the_read_model_survives_a_broker_crash_and_catches_up(tmp_path: Path) -> None:
    """SIGKILL the broker under a running dashboard consumer, start it again on the same data:
    the consumers reconnect by themselves and the findings published afterwards arrive."""
    broker = Broker(tmp_path / "kafka")
    broker.up()
    try:
        settings = KafkaSettings(broker.bootstrap, "NCT06904729", "crash")
        await ensure_topics(settings)
        await _produce(settings, [_finding(n) for n in range(N // 2)])
        store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
        consumer = ReadModelConsumer(settings, store, lambda _: None)
        await consumer.start()
        try:
            await wait_for(lambda: _holds(store, N // 2), "the first findings", timeout=60)
            await asyncio.to_thread(broker.kill)
            await asyncio.to_thread(broker.up)
            await _produce(settings, [_finding(n) for n in range(N // 2, N)])
            await wait_for(lambda: _holds(store, N), "the findings published after the crash", timeout=120)
        finally:
            await consumer.stop()
        assert _ids(store) == sorted(str(uuid.UUID(int=n)) for n in range(N))
    finally:
        broker.down()


async def _holds(store: ReadModel, count: int) -> bool:
    return len(_ids(store)) >= count
