"""Talking to the test broker: publish, wait until the service has consumed, read the outputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings, ensure_topics, partition_ids, read_to_end


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 90.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def publish(settings: KafkaSettings, messages: list[tuple[bytes | None, bytes]]) -> None:
    """Produce (key, value) messages to participant-events, in order."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(settings.topics.participant_events, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


def keyed(lines: list[bytes]) -> list[tuple[bytes | None, bytes]]:
    """Example lines as messages keyed by their participant id, as upstream systems publish them."""
    return [(json.loads(line)["participant_id"].encode(), line) for line in lines]


async def wait_until_consumed(settings: KafkaSettings, group_id: str, check_alive: Callable[[], None]) -> None:
    """Wait until the group's committed offsets reach the end of participant-events."""
    topic = settings.topics.participant_events
    tps = [TopicPartition(topic, p) for p in await partition_ids(settings.bootstrap_servers, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await consumer.start()
    await admin.start()
    try:
        ends = await consumer.end_offsets(tps)

        async def consumed() -> bool:
            check_alive()
            try:
                committed = await admin.list_consumer_group_offsets(group_id)
            except KafkaError as e:  # e.g. the offsets topic is still being created on a new broker
                if e.retriable:
                    return False
                raise
            return all(tp in committed and committed[tp].offset >= ends[tp] for tp in tps if ends[tp] > 0)

        await wait_for(consumed, f"group {group_id} to consume up to {dict(ends)}")
    finally:
        await admin.close()
        await consumer.stop()


async def findings(settings: KafkaSettings) -> list[dict[str, Any]]:
    """Every committed finding on the deviations topic."""
    return [json.loads(r.value or b"") async for r in read_to_end(settings.bootstrap_servers, settings.topics.deviations)]


async def dead_letters(settings: KafkaSettings) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on the dead-letter topic."""
    return [r async for r in read_to_end(settings.bootstrap_servers, settings.topics.dead_letter)]


def rule_ids_by_participant(found: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in found:
        out.setdefault(f["participant_id"], []).append(f["rule_id"])
    return {pid: sorted(rules) for pid, rules in out.items()}
