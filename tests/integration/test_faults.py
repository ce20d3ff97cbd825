"""The fault-injection suite: instances SIGKILLed at random moments, the broker SIGKILLed and
restarted on its data, instances joining and leaving in a storm, all while a simulated cohort
is published. Afterwards the deviations topic (read_committed) equals the offline replay of the
same events: no duplicate, none missing, none extra, and no instance exited on its own.

The suite runs on a broker of its own (it kills it). Its seeds are printed in the run's summary;
``TRIALGUARD_FAULT_SEED=N`` replays one.
"""

from __future__ import annotations

import json
import random
import signal
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings, group_lag, rules_group_id
from tests.integration.cohort import compare, replayed, simulated
from tests.integration.conftest import REPORT, Broker, ServiceProcess, seed_for
from tests.integration.kafka_support import committed_total, findings, http_get, keyed, publish, wait_for

pytestmark = pytest.mark.integration

SESSION_TIMEOUT_MS = 4_000
"""Short, so that the partitions of a killed instance move on quickly (the suite's broker allows it)."""


@pytest.fixture(scope="module")
def fault_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = Broker(tmp_path_factory.mktemp("fault-kafka"), properties="group.min.session.timeout.ms=1000")
    broker.up()
    try:
        yield broker
    finally:
        broker.down()


@pytest.fixture
def fault_settings(fault_broker: Broker) -> KafkaSettings:
    return KafkaSettings(fault_broker.bootstrap, "NCT06904729", f"faults-{uuid.uuid4().hex[:10]}")


class Fleet:
    """Rules service processes of one group. Those the test ended are told apart from any that
    exited on their own, which is a failure."""

    def __init__(self, settings: KafkaSettings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.running: list[ServiceProcess] = []
        self.started = 0

    def start(self) -> ServiceProcess:
        self.started += 1
        service = ServiceProcess(
            self.settings,
            self.folder / f"instance-{self.started}.log",
            env={"TRIALGUARD_SESSION_TIMEOUT_MS": str(SESSION_TIMEOUT_MS)},
        ).start()
        self.running.append(service)
        return service

    async def join(self) -> ServiceProcess:
        """Start an instance and wait until it answers on its HTTP port (its signal handlers are
        set by then: a SIGTERM ends it cleanly)."""
        service = self.start()

        async def answering() -> bool:
            service.check_alive()
            try:
                await http_get(service.http_port, "/health")
            except OSError:
                return False
            return True

        await wait_for(answering, "a new instance to answer on its HTTP port")
        return service

    def end(self, service: ServiceProcess, sig: signal.Signals) -> int:
        self.check_alive()
        self.running.remove(service)
        return service.stop(sig)

    @classmethod
    def of(cls, service: ServiceProcess) -> Fleet:
        """A fleet of one instance started elsewhere."""
        fleet = cls(service.settings, service.log_path.parent)
        fleet.running.append(service)
        return fleet

    def check_alive(self) -> None:
        for service in self.running:
            service.check_alive()

    def close(self) -> None:
        for service in self.running:
            service.stop(signal.SIGKILL)


@pytest.fixture
def fleet(fault_settings: KafkaSettings, tmp_path: Path) -> Iterator[Fleet]:
    fleet = Fleet(fault_settings, tmp_path)
    yield fleet
    fleet.close()


def weathered(condition: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    """The condition, with "the broker is not answering yet" read as "not yet"."""

    async def check() -> bool:
        try:
            return await condition()
        except (KafkaError, OSError):
            return False

    return check


async def wait_committed(settings: KafkaSettings, target: int, fleet: Fleet) -> None:
    async def reached() -> bool:
        fleet.check_alive()
        return await committed_total(settings) >= target

    await wait_for(weathered(reached), f"the group to commit {target} events", timeout=180)


async def wait_consumed(settings: KafkaSettings, fleet: Fleet) -> None:
    async def consumed() -> bool:
        fleet.check_alive()
        lag = await group_lag(settings, rules_group_id(settings))
        return lag is not None and not any(lag.values())

    await wait_for(weathered(consumed), "the group to consume participant-events to its end", timeout=300)


async def equal_to_the_replay(settings: KafkaSettings, events: list[bytes], what: str) -> None:
    """The committed findings equal the offline replay of ``events``; the counts go to the summary."""
    counts = compare(await findings(settings), replayed(events))
    REPORT.append(
        f"{what}; findings committed {counts['committed']} of {counts['expected']} expected, "
        f"duplicates {counts['duplicates']}, missing {counts['missing']}, extra {counts['extra']}"
    )
    assert counts["duplicates"] == counts["missing"] == counts["extra"] == 0, counts
    assert counts["committed"] == counts["expected"], counts


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """40,000 events of a simulated cohort, in log order."""
    return simulated(tmp_path_factory.mktemp("cohort"), 560, 29, 40_000)


async def test_sigkills_of_instances_and_of_the_broker_lose_and_duplicate_nothing(
    fault_settings: KafkaSettings, fault_broker: Broker, fleet: Fleet, cohort: list[bytes]
) -> None:
    rng = random.Random(seed_for("fault suite"))
    settings = fault_settings
    chunks = [cohort[i : i + 2_000] for i in range(0, len(cohort), 2_000)]  # 20
    faults = rng.sample(range(len(chunks) - 1), 11)
    broker_chunk = faults.pop(rng.randrange(len(faults)))
    fleet.start()
    fleet.start()
    published = kills = broker_kills = 0
    for number, chunk in enumerate(chunks):
        await publish(settings, keyed(chunk))
        if number in faults or number == broker_chunk:
            # Somewhere inside this chunk's processing, at a random point.
            await wait_committed(settings, published + int(len(chunk) * rng.uniform(0.05, 0.95)), fleet)
            if number == broker_chunk:
                fault_broker.kill()
                broker_kills += 1
                fault_broker.up()  # on the same data
            else:
                fleet.end(rng.choice(fleet.running), signal.SIGKILL)
                kills += 1
                fleet.start()
        published += len(chunk)
    await wait_consumed(settings, fleet)

    what = f"{len(cohort)} events, {fleet.started} instances started, {kills} instance SIGKILLs, {broker_kills} broker"
    await equal_to_the_replay(settings, cohort, f"fault suite: {what} SIGKILL")
    assert (kills, broker_kills) == (10, 1)
    for service in list(fleet.running):
        assert fleet.end(service, signal.SIGTERM) == 0, "a SIGTERM ends an instance cleanly"


async def test_a_rebalance_storm_loses_and_duplicates_nothing(
    fault_settings: KafkaSettings, fleet: Fleet, cohort: list[bytes]
) -> None:
    rng = random.Random(seed_for("rebalance storm"))
    settings = fault_settings
    events = cohort[:18_000]
    chunks = [events[i : i + 1_500] for i in range(0, len(events), 1_500)]  # 12
    fleet.start()
    published = joins = leaves = 0
    for chunk in chunks:
        await publish(settings, keyed(chunk))
        await wait_committed(settings, published + int(len(chunk) * rng.uniform(0.05, 0.95)), fleet)
        # An instance joins or one leaves (SIGTERM: it hands its partitions over), never none left.
        if len(fleet.running) == 1 or (len(fleet.running) < 4 and rng.random() < 0.5):
            await fleet.join()
            joins += 1
        else:
            assert fleet.end(rng.choice(fleet.running), signal.SIGTERM) == 0
            leaves += 1
        published += len(chunk)
    await wait_consumed(settings, fleet)

    what = f"rebalance storm: {len(events)} events, {joins} joins, {leaves} leaves"
    await equal_to_the_replay(settings, events, what)
    assert joins + leaves == len(chunks)


async def test_the_broker_away_at_start_and_mid_run_is_waited_for(tmp_path: Path, cohort: list[bytes]) -> None:
    broker = Broker(tmp_path / "kafka")  # not started yet
    settings = KafkaSettings(broker.bootstrap, "NCT06904729", "weather")
    service = ServiceProcess(settings, tmp_path / "rules.log").start()

    async def health_is(expected: tuple[int, str]) -> bool:
        service.check_alive()
        try:
            status, body = await http_get(service.http_port, "/health")
        except OSError:
            return False
        return (status, json.loads(body)["status"]) == expected

    try:
        await wait_for(lambda: health_is((503, "waiting_for_broker")), "/health to say it waits for the broker")
        await wait_for(lambda: _logged(service, "waiting_for_broker"), "the log to say what it waits for")
        broker.up()
        await wait_for(lambda: health_is((200, "ready")), "the service to be ready once the broker is up")
        await publish(settings, keyed(cohort[:3_000]))
        await wait_consumed(settings, Fleet.of(service))

        broker.kill()
        await wait_for(lambda: health_is((503, "waiting_for_broker")), "/health to notice the broker is gone")
        broker.up()
        await wait_for(lambda: health_is((200, "ready")), "the service to be ready again")
        await publish(settings, keyed(cohort[3_000:6_000]))
        await wait_consumed(settings, Fleet.of(service))
        service.check_alive()
        await equal_to_the_replay(settings, cohort[:6_000], "broker away at start and mid-run")
        assert service.stop(signal.SIGTERM) == 0
    finally:
        if service.proc is not None and service.proc.poll() is None:
            service.stop(signal.SIGKILL)
        broker.down()


async def _logged(service: ServiceProcess, event: str) -> bool:
    return f'"event": "{event}"' in service.log()
