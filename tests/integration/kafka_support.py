"""Talking to the test broker: publish, wait until the service has consumed, read the outputs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings, ensure_topics, group_lag, read_to_end, rules_group_id


class Alive(Protocol):
    """A rules service under test that can say it has not exited on its own."""

    def check_alive(self) -> None: ...


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
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", enable_idempotence=True)
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


STALL_SECONDS = 90.0
"""How long the lag may stay flat before waiting for consumption fails."""
CONSUME_TIMEOUT = 900.0
"""The longest a consumption may take while it keeps progressing."""


async def wait_until_consumed(settings: KafkaSettings, check_alive: Callable[[], None]) -> None:
    """Wait until the rules service has consumed participant-events to its end."""
    group_id = rules_group_id(settings)
    loop = asyncio.get_running_loop()
    least: int | None = None
    progressed = loop.time()
    what = f"group {group_id} to consume participant-events to its end"

    async def consumed() -> bool:
        # A long log on a busy machine takes long: fail when the lag has stopped falling for
        # STALL_SECONDS (a stuck service), not after a fixed time (a slow one).
        nonlocal least, progressed
        check_alive()
        lag = await group_lag(settings, group_id)
        behind = None if lag is None else sum(lag.values())
        if behind is not None and (least is None or behind < least):
            least, progressed = behind, loop.time()
        elif loop.time() - progressed > STALL_SECONDS:
            raise AssertionError(f"waiting for {what}: no progress for {STALL_SECONDS:.0f}s ({behind} behind)")
        return behind == 0

    await wait_for(consumed, what, timeout=CONSUME_TIMEOUT)


async def findings(settings: KafkaSettings) -> list[dict[str, Any]]:
    """Every committed finding on the deviations topic."""
    return [json.loads(r.value or b"") async for r in read_to_end(settings, settings.topics.deviations)]


async def dead_letters(settings: KafkaSettings) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on the dead-letter topic."""
    return [r async for r in read_to_end(settings, settings.topics.dead_letter)]


def rule_ids_by_participant(found: list[dict[str, Any]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in found:
        out.setdefault(f["participant_id"], []).append(f["rule_id"])
    return {pid: sorted(rules) for pid, rules in out.items()}


async def committed_offsets(settings: KafkaSettings) -> dict[int, int]:
    """The rules group's committed offset of each participant-events partition."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(rules_group_id(settings))
    except KafkaError:  # the group or the offsets topic does not exist yet
        return {}
    finally:
        await admin.close()
    return {tp.partition: o.offset for tp, o in offsets.items()}


async def committed_total(settings: KafkaSettings) -> int:
    """Events of participant-events the rules group has committed, over all partitions."""
    return sum((await committed_offsets(settings)).values())


async def wait_committed(settings: KafkaSettings, target: int, *services: Alive) -> None:
    async def reached() -> bool:
        for service in services:
            service.check_alive()
        return await committed_total(settings) >= target

    await wait_for(reached, f"the rules service to commit {target} events")


async def http_get(port: int, path: str) -> tuple[int, str]:
    """A GET to the service's HTTP port: (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    response = await reader.read()
    writer.close()
    head, _, body = response.decode().partition("\r\n\r\n")
    return int(head.split()[1]), body


def metric(text: str, name: str) -> float:
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith(name + " ") or line.startswith(name + "{")
    )


class Runnable(Protocol):
    """An in-process rules service."""

    async def run(self, stop: asyncio.Event) -> None: ...


async def run_until_consumed(service: Runnable, settings: KafkaSettings) -> None:
    """Run an in-process service until its group has consumed participant-events, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))

    def check_alive() -> None:
        if task.done():
            raise AssertionError(f"the service ended on its own: {task.exception()!r}")

    try:
        await wait_until_consumed(settings, check_alive)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
