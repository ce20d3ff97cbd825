"""Talking to the test broker: publish, wait until the service has consumed, read the outputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from services.kafka import KafkaSettings, ensure_topics, group_lag, read_to_end
from services.rules import rules_group_id


async def wait_for(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 90.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.2)


async def publish(settings: KafkaSettings, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
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


def keyed(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """Example lines as messages keyed by their participant id, as upstream systems publish them."""
    return [(json.loads(line)["participant_id"].encode(), line) for line in lines]


async def wait_until_consumed(settings: KafkaSettings, check_alive: Callable[[], None]) -> None:
    """Wait until the rules service has consumed participant-events to its end."""
    group_id = rules_group_id(settings)

    async def consumed() -> bool:
        check_alive()
        lag = await group_lag(settings, group_id)
        return lag is not None and not any(lag.values())

    await wait_for(consumed, f"group {group_id} to consume participant-events to its end")


async def findings(settings: KafkaSettings) -> list[dict[str, Any]]:
    """Every committed finding on the deviations topic."""
    return [
        json.loads(r.value or b"") async for r in read_to_end(settings.bootstrap_servers, settings.topics.deviations)
    ]


async def dead_letters(settings: KafkaSettings) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on the dead-letter topic."""
    return [r async for r in read_to_end(settings.bootstrap_servers, settings.topics.dead_letter)]


def rule_ids_by_participant(found: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in found:
        out.setdefault(f["participant_id"], []).append(f["rule_id"])
    return {pid: sorted(rules) for pid, rules in out.items()}
