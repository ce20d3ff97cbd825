"""Bulk review on a real broker: a batch's reviews are committed in one Kafka transaction, so a
``read_committed`` reader (the read model, the audit) sees all of them or none."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from aiokafka.errors import KafkaError

from contracts import FindingReviewed
from services.dashboard.batch_publish import BatchPublishError, ReviewBatchPublisher
from services.dashboard.bulk import plan_reviews
from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.reviewing import ReviewRequest
from services.dashboard.roles import Role, User
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel
from services.kafka import KafkaSettings, ensure_topics, read_to_end
from tests.integration.kafka_support import wait_for
from tests.integration.test_dashboard_read_model import _produce
from tests.unit.test_read_model import _alert

N = 100
DANA = User("dana", Role.DATA_MANAGER, None)
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def _plan(store: ReadModel, ids: Sequence[str], asked: ReviewRequest) -> list[FindingReviewed]:
    with store.reader() as db:
        return plan_reviews(db, DANA, ids, asked, study_id="NCT06904729", now=NOW)


async def _committed_reviews(settings: KafkaSettings) -> list[dict[str, Any]]:
    return [json.loads(r.value or b"") async for r in read_to_end(settings, settings.topics.finding_reviews)]


def _count(store: ReadModel, sql: str) -> int:
    with store.reader() as db:
        return int(db.execute(sql).fetchone()[0])


async def test_a_bulk_review_is_committed_all_or_nothing(
    settings: KafkaSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ensure_topics(settings)
    await _produce(settings, [_alert(n) | {"rule_id": "RELAPSE"} for n in range(N)])
    store = ReadModel(tmp_path / "read-model.sqlite3", settings.topics)
    consumer = ReadModelConsumer(settings, store, lambda _: None)
    publisher = ReviewBatchPublisher(DashboardSettings(settings, tmp_path, "127.0.0.1", 0))
    await consumer.start()
    await publisher.start()
    try:

        async def findings_in() -> bool:
            return _count(store, "SELECT count(*) FROM findings") == N

        await wait_for(findings_in, f"{N} findings in the read model", timeout=60)
        with store.reader() as db:
            ids = [row[0] for row in db.execute("SELECT finding_id FROM findings ORDER BY seq").fetchall()]

        # A batch whose 51st send fails: the 50 sent before it are aborted with the transaction.
        acknowledged = _plan(store, ids, ReviewRequest("acknowledge", comment="seen"))
        producer = publisher._producer
        assert producer is not None
        send, sent = producer.send, []

        async def send_until_the_51st(*args: Any, **kwargs: Any) -> Any:
            sent.append(args)
            if len(sent) == 51:
                raise KafkaError("the broker went away mid-batch")
            return await send(*args, **kwargs)

        monkeypatch.setattr(producer, "send", send_until_the_51st)
        with pytest.raises(BatchPublishError):
            await publisher.publish(acknowledged)
        monkeypatch.setattr(producer, "send", send)
        assert len(sent) == 51

        # The next batch, on the same producer, commits: exactly one review per finding.
        resolved = _plan(store, ids, ReviewRequest("resolve", reason="reported_expedited"))
        await publisher.publish(resolved)

        # A commit is decided before its markers are written: a read_committed reader sees the
        # batch's records partition by partition as their markers land, so wait for all of them.
        on_topic: list[dict[str, Any]] = []

        async def all_committed_visible() -> bool:
            on_topic[:] = await _committed_reviews(settings)
            return len(on_topic) >= len(resolved)

        await wait_for(all_committed_visible, f"{len(resolved)} committed reviews on the topic", timeout=60)
        assert sorted(r["review_id"] for r in on_topic) == sorted(str(r.review_id) for r in resolved)
        assert {r["action"] for r in on_topic} == {"resolve"}
        assert sorted(r["finding_id"] for r in on_topic) == sorted(ids)

        async def all_resolved() -> bool:
            return _count(store, "SELECT count(*) FROM findings WHERE status = 'resolved'") == N

        await wait_for(all_resolved, f"{N} resolved findings in the read model", timeout=60)
        assert _count(store, "SELECT count(*) FROM reviews") == N, "an aborted review reached the read model"
    finally:
        await publisher.stop()
        await consumer.stop()
