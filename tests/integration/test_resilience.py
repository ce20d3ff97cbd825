"""Rebalances, fencing and failed commits never kill an instance (in-process, real broker).

Each fault is made to happen at an exact point of a partition's transaction, so each case is
deterministic: the revocation during an in-flight transaction (the CI flake of issue 7, where
the revoked producer was closed under a transaction still sending), a producer fenced by a
newer owner of its transactional id, and a commit that fails before or after the broker
committed. Afterwards the committed findings equal the offline replay.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings
from services.rules import RulesService
from tests.integration.cohort import replayed, same_findings, simulated
from tests.integration.kafka_support import findings, keyed, publish, wait_for, wait_until_consumed

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return simulated(tmp_path_factory.mktemp("cohort"), 120, 23, 8_000)


class InProcess:
    """A RulesService running as a task of the test's event loop."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.service = RulesService(settings, PROTOCOL, session_timeout_ms=6_000)
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] = asyncio.create_task(self.service.run(self.stop))

    def check_alive(self) -> None:
        if self.task.done():
            raise AssertionError(f"the service ended on its own: {self.task.exception()!r}")


@contextlib.asynccontextmanager
async def running(settings: KafkaSettings, count: int = 1) -> AsyncIterator[list[InProcess]]:
    instances = [InProcess(settings) for _ in range(count)]
    try:
        yield instances
    finally:
        for instance in instances:
            instance.stop.set()
        await asyncio.wait_for(asyncio.gather(*(i.task for i in instances), return_exceptions=True), 60)


def all_alive(instances: list[InProcess]) -> Callable[[], None]:
    def check() -> None:
        for instance in instances:
            instance.check_alive()

    return check


def gate(
    monkeypatch: pytest.MonkeyPatch, method: str, when: Callable[..., bool]
) -> tuple[asyncio.Event, asyncio.Event]:
    """Park the first call of ``AIOKafkaProducer.<method>`` for which ``when(*args)`` holds:
    ``parked`` is set when it waits, and it goes on once ``release`` is set."""
    parked, release = asyncio.Event(), asyncio.Event()
    original: Callable[..., Awaitable[Any]] = getattr(AIOKafkaProducer, method)

    async def gated(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        if not parked.is_set() and when(*args, **kwargs):
            parked.set()
            await release.wait()
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, method, gated)
    return parked, release


async def test_revocation_during_an_in_flight_transaction_waits_for_it(
    settings: KafkaSettings, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Park a transaction just before it sends its first snapshots (the round of a partition's first
    # batch): where the CI flake's ProducerClosed came from, once the revocation had stopped the producer.
    state_topic = settings.topics.participant_state
    parked, release = gate(monkeypatch, "send_batch", lambda batch, topic, *a, **k: topic == state_topic)
    half = len(cohort) // 2
    await publish(settings, keyed(cohort[:half]))
    async with running(settings) as (first,):
        await wait_for(lambda: _is_set(parked), "a transaction to park before its snapshots")
        revoking = asyncio.Event()
        release_partitions = first.service._release

        async def spy(tps: Any) -> None:
            revoking.set()
            await release_partitions(tps)

        monkeypatch.setattr(first.service, "_release", spy)
        async with running(settings) as (second,):  # joining makes the group take the partitions back
            await wait_for(lambda: _is_set(revoking), "the first instance's partitions to be revoked")
            assert first.service.partitions, "the revocation waits for the transaction before closing"
            release.set()
            await publish(settings, keyed(cohort[half:]))
            await wait_until_consumed(settings, all_alive([first, second]))
            assert first.service.ready
            assert second.service.ready
            assert first.service.metrics.transactions_failed == 0
    same_findings(await findings(settings), replayed(cohort))


async def test_a_fenced_producer_reopens_its_partition_and_goes_on(
    settings: KafkaSettings, cohort: list[bytes]
) -> None:
    half = len(cohort) // 2
    async with running(settings) as (instance,):
        await publish(settings, keyed(cohort[:half]))
        await wait_until_consumed(settings, instance.check_alive)
        # A newer producer with the same transactional id (what a new owner of partition 0 opens)
        # bumps the epoch: the service's producer of partition 0 is fenced, a zombie.
        tp = TopicPartition(settings.topics.participant_events, 0)
        intruder = AIOKafkaProducer(
            **settings.client_kwargs(),
            transactional_id=instance.service.transactional_id(tp),
            enable_idempotence=True,
        )
        await intruder.start()
        await intruder.stop()
        await publish(settings, keyed(cohort[half:]))
        await wait_until_consumed(settings, instance.check_alive)
        metrics = instance.service.metrics
        assert metrics.transactions_failed >= 1, "partition 0's next transaction met the fence"
        assert metrics.partitions_reopened >= 1
        assert instance.service.ready
    same_findings(await findings(settings), replayed(cohort))


def fail_once(
    monkeypatch: pytest.MonkeyPatch, method: str, error: Exception, *, after_the_call: bool, when: Callable[..., bool]
) -> list[str]:
    """Make the first call of ``AIOKafkaProducer.<method>`` for which ``when(*args)`` holds raise
    ``error``, before the call or after it went through; returns the record of that failure."""
    original: Callable[..., Awaitable[Any]] = getattr(AIOKafkaProducer, method)
    failed: list[str] = []

    async def failing(self: AIOKafkaProducer, *args: Any, **kwargs: Any) -> Any:
        if not failed and when(*args, **kwargs):
            failed.append(method)
            if after_the_call:
                await original(self, *args, **kwargs)
            raise error
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaProducer, method, failing)
    return failed


@pytest.mark.parametrize(
    ("method", "after_the_call"),
    [("commit_transaction", False), ("commit_transaction", True), ("send", False)],
    # after-commit: the broker committed but the answer was lost, so no batch may count twice;
    # send: the first finding's send breaks a transaction that has begun.
    ids=["commit-fails", "commit-answer-lost", "send-fails-mid-transaction"],
)
async def test_a_failed_transaction_restores_the_partition_from_what_was_committed(
    settings: KafkaSettings, cohort: list[bytes], monkeypatch: pytest.MonkeyPatch, method: str, after_the_call: bool
) -> None:
    deviations = settings.topics.deviations
    failed = fail_once(
        monkeypatch, method, KafkaConnectionError("injected"), after_the_call=after_the_call,
        when=lambda *args, **_: method != "send" or args[0] == deviations,
    )  # fmt: skip
    async with running(settings) as (instance,):
        await publish(settings, keyed(cohort))
        await wait_until_consumed(settings, instance.check_alive)
        assert failed
        assert instance.service.metrics.transactions_failed == 1
        assert instance.service.metrics.partitions_reopened == 1
    same_findings(await findings(settings), replayed(cohort))


async def _is_set(event: asyncio.Event) -> bool:
    return event.is_set()
