"""Kafka as a trust boundary: a SCRAM-secured broker with ACLs per component (scripts/kafka.sh
secure-up), attacked as a curious insider with one component's credentials would, and the read
model's own check of reviews that reach the topic anyway. One broker for the module."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from contracts import FindingReviewed
from events import Topics
from services.dashboard import queries
from services.dashboard.batch_publish import ReviewBatchPublisher
from services.dashboard.consumer import ReadModelConsumer
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel
from services.kafka import KafkaSettings, ensure_topics, read_to_end
from services.kafka_security import KafkaSecurity
from tests.builders import example_lines
from tests.integration.kafka_support import findings, keyed, publish, rule_ids_by_participant, wait_for
from tests.integration.test_rules_service import expected_example_findings
from tests.processes import Broker, ServiceProcess
from tests.unit.test_read_model import _finding

pytestmark = pytest.mark.integration

TOPICS = Topics("NCT06904729", f"secure-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A secured broker of this module's own, its study's topics created by the rules service's user."""
    broker = Broker(tmp_path_factory.mktemp("secure-kafka"), secure=TOPICS)
    broker.up()
    try:
        asyncio.run(ensure_topics(broker.settings_as("rules")))
        yield broker
    finally:
        broker.down()


def forged_review(finding_id: str, role: str = "site", action: str = "close") -> dict[str, Any]:
    """A FindingReviewed closing a GZ-01 finding, as an attacker would write it."""
    return {
        "event_type": "FindingReviewed",
        "schema_version": 1,
        "review_id": str(uuid.uuid4()),
        "study_id": TOPICS.study_id,
        "site_id": "GZ-01",
        "participant_id": "P-001",
        "finding_id": finding_id,
        "action": action,
        "actor": "mallory",
        "role": role,
        "reviewed_at": dt.datetime.now(dt.UTC).isoformat(),
        "reason": "nothing to see here",
    }


async def produce(settings: KafkaSettings, topic: str, value: dict[str, Any], **producer: Any) -> None:
    client = AIOKafkaProducer(**settings.client_kwargs(), acks="all", **producer)
    try:
        await client.start()  # a refused login fails here: stop() still closes what start() opened
        await client.send_and_wait(topic, json.dumps(value).encode(), key=b"P-001")
    finally:
        await client.stop()


@pytest.mark.parametrize("topic", [TOPICS.finding_reviews, TOPICS.deviations])
async def test_a_review_or_finding_forged_with_the_gateways_credentials_is_refused(broker: Broker, topic: str) -> None:
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(broker.settings_as("gateway"), topic, forged_review(str(uuid.uuid4())))


async def test_the_dashboard_cannot_write_participant_events(broker: Broker) -> None:
    event = json.loads(example_lines()[0])
    with pytest.raises(TopicAuthorizationFailedError):
        await produce(broker.settings_as("dashboard"), TOPICS.participant_events, event)


async def test_the_gateway_cannot_take_over_the_rules_services_transactions(broker: Broker) -> None:
    # A transactional id of the rules service would fence its producer and abort its open transaction.
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await produce(
            broker.settings_as("gateway"),
            TOPICS.participant_events,
            json.loads(example_lines()[0]),
            transactional_id=f"{TOPICS.consumer_group}.p0",
        )


@pytest.mark.parametrize("user", ["dashboard", "gateway"])
async def test_the_dashboard_and_the_gateway_cannot_create_topics(broker: Broker, user: str) -> None:
    # Creating a study's topics first would let a component choose their retention and partitions.
    other_study = replace(broker.settings_as(user), study_id="NCT00000000")
    with pytest.raises(TopicAuthorizationFailedError, match="creating topic"):
        await ensure_topics(other_study)


@pytest.mark.parametrize("user", ["dashboard", "gateway", "operator"])
async def test_no_one_but_the_rules_service_commits_offsets_for_its_group(broker: Broker, user: str) -> None:
    # Committing the rules group's offsets past the end would make the rules service skip events.
    consumer = AIOKafkaConsumer(**broker.settings_as(user).client_kwargs(), group_id=TOPICS.consumer_group)
    await consumer.start()
    try:
        tp = TopicPartition(TOPICS.participant_events, 0)
        consumer.assign([tp])
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.commit({tp: 1_000_000})
    finally:
        await consumer.stop()


@pytest.mark.parametrize(
    ("user", "password"),
    [(None, None), ("gateway", "a-wrong-password"), ("mallory", "any-password")],
    ids=["no-credentials", "wrong-password", "unknown-user"],
)
async def test_a_client_without_valid_credentials_cannot_connect(
    broker: Broker, user: str | None, password: str | None
) -> None:
    settings = (
        KafkaSettings(broker.bootstrap, TOPICS.study_id, TOPICS.namespace, security=KafkaSecurity())
        if user is None
        else broker.settings_as(user, password)
    )
    with pytest.raises(KafkaConnectionError):
        await produce(settings, TOPICS.finding_reviews, forged_review(str(uuid.uuid4())))


async def test_a_review_its_role_may_not_take_published_as_the_dashboard_is_kept_but_not_applied(
    broker: Broker, tmp_path: Path
) -> None:
    finding = _finding(1)  # of site GZ-01, participant P-001
    finding_id = finding["deviation_id"]
    await produce(broker.settings_as("rules"), TOPICS.deviations, finding)
    dashboard = broker.settings_as("dashboard")
    store = ReadModel(tmp_path / "read-model.sqlite3", dashboard.topics)
    consumer = ReadModelConsumer(dashboard, store, lambda _: None)
    await consumer.start()
    try:
        # What the dashboard's own publisher would send: the broker lets the dashboard write reviews.
        for review in (forged_review(finding_id), forged_review(finding_id, "data-manager", "acknowledge")):
            await consumer.broker.publish(json.dumps(review).encode(), TOPICS.finding_reviews, key=b"P-001")

        async def both_folded() -> bool:
            with store.reader() as db:
                found = queries.finding(db, finding_id)
            return found is not None and len(found["reviews"]) == 2

        await wait_for(both_folded, "the two reviews in the read model", timeout=60)
    finally:
        await consumer.stop()
    with store.reader() as db:
        found = queries.finding(db, finding_id)
    assert found is not None
    assert found["status"] == "acknowledged", "the site user's close was applied"
    assert [(r["role"], r["outcome"]) for r in found["reviews"]] == [
        ("site", "not authorized: role 'site' may not close findings"),
        ("data-manager", None),
    ]


async def test_the_rules_service_runs_end_to_end_on_the_secured_broker(broker: Broker, tmp_path: Path) -> None:
    rules = broker.settings_as("rules")
    service = ServiceProcess(rules, tmp_path / "rules.log", env=broker.security_env("rules")).start()
    try:
        operator = broker.settings_as("operator")
        lines = example_lines()
        await publish(operator, keyed(lines))
        expected = expected_example_findings()
        example_participants = {json.loads(line)["participant_id"] for line in lines}

        async def all_found() -> bool:
            service.check_alive()
            found = [f for f in await findings(operator) if f["participant_id"] in example_participants]
            return rule_ids_by_participant(found) == expected

        await wait_for(all_found, "the example's findings on deviations", timeout=90)
    finally:
        service.stop()
    assert "sasl_plain_password" not in service.log()
    assert broker.password_file("rules").read_text().strip() not in service.log()


async def test_the_dashboard_commits_a_bulk_review_in_its_own_transaction_and_the_gateway_cannot(
    broker: Broker, tmp_path: Path
) -> None:
    finding_id = str(uuid.uuid4())
    reviews = [FindingReviewed.model_validate(forged_review(finding_id, "data-manager", "acknowledge"))]
    dashboard = ReviewBatchPublisher(DashboardSettings(broker.settings_as("dashboard"), tmp_path, "127.0.0.1", 0))
    await dashboard.start()
    try:
        await dashboard.publish(reviews)
    finally:
        await dashboard.stop()

    async def review_visible() -> bool:
        # Visible to read_committed readers once the commit's markers are written, just after the commit.
        on_topic = read_to_end(broker.settings_as("operator"), TOPICS.finding_reviews)
        return str(reviews[0].review_id) in {json.loads(r.value or b"")["review_id"] async for r in on_topic}

    await wait_for(review_visible, "the committed review on finding-reviews", timeout=60)
    # The gateway may not open a transaction under the dashboard's transactional ids.
    gateway = ReviewBatchPublisher(DashboardSettings(broker.settings_as("gateway"), tmp_path, "127.0.0.1", 0))
    try:
        with pytest.raises(TransactionalIdAuthorizationFailed):
            await gateway.start()
    finally:
        await gateway.stop()
