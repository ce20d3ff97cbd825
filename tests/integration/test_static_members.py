"""Static group membership (``--instance-id``): a SIGKILLed instance restarted under its id takes
its partitions back without a rebalance, the other instance never gives its own up, and a second
live process under an id in use takes it over while the first stops, findings exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from services.kafka import KafkaSettings, group_lag, rules_group_id
from tests.integration.cohort import compare, replayed, simulated
from tests.integration.conftest import REPORT, ServiceProcess
from tests.integration.kafka_support import findings, http_get, keyed, publish, wait_committed, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """8,000 events of a simulated cohort, in log order."""
    return simulated(tmp_path_factory.mktemp("cohort"), 160, 345, 8_000)


class Instances:
    """Rules service processes, each under an instance id, each incarnation logging to its own file."""

    def __init__(self, settings: KafkaSettings, folder: Path) -> None:
        self.settings = settings
        self.folder = folder
        self.all: list[ServiceProcess] = []

    def start(self, instance_id: str) -> ServiceProcess:
        log = self.folder / f"{instance_id}-{len(self.all) + 1}.log"
        service = ServiceProcess(self.settings, log, env={"TRIALGUARD_INSTANCE_ID": instance_id}).start()
        self.all.append(service)
        return service

    def close(self) -> None:
        for service in self.all:
            if service.proc is not None and service.proc.poll() is None:
                service.stop(signal.SIGKILL)


@pytest.fixture
def instances(settings: KafkaSettings, tmp_path: Path) -> Iterator[Instances]:
    fleet = Instances(settings, tmp_path)
    yield fleet
    fleet.close()


async def ready(service: ServiceProcess) -> bool:
    service.check_alive()
    try:
        status, _ = await http_get(service.http_port, "/health")
    except OSError:
        return False
    return status == 200


async def members(settings: KafkaSettings) -> tuple[str, list[str]]:
    """The rules group's state and its members' ids (a static member's begins with its instance id)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([rules_group_id(settings)])
    finally:
        await admin.close()
    [group] = response.groups
    return group[2], sorted(member[0] for member in group[5])


async def stable_with(settings: KafkaSettings, *services_and_ids: tuple[ServiceProcess, str]) -> None:
    """Wait until the group is stable with exactly these instances as members, each one ready."""

    async def stable() -> bool:
        state, ids = await members(settings)
        wanted = sorted(instance_id for _, instance_id in services_and_ids)
        named = len(ids) == len(wanted) and all(any(m.startswith(f"{w}-") for m in ids) for w in wanted)
        return state == "Stable" and named and all([await ready(s) for s, _ in services_and_ids])

    await wait_for(stable, f"the group to be stable with {[i for _, i in services_and_ids]}")


async def consumed(settings: KafkaSettings, *services: ServiceProcess) -> None:
    async def done() -> bool:
        for service in services:
            service.check_alive()
        lag = await group_lag(settings, rules_group_id(settings))
        return lag is not None and not any(lag.values())

    await wait_for(done, "the group to consume participant-events to its end", timeout=300)


def logged(service: ServiceProcess, event: str) -> int:
    return service.log().count(f'"event": "{event}"')


async def exactly_the_replay(settings: KafkaSettings, events: list[bytes], what: str) -> None:
    counts = compare(await findings(settings), replayed(events))
    REPORT.append(
        f"{what}: findings committed {counts['committed']} of {counts['expected']} expected, "
        f"duplicates {counts['duplicates']}, missing {counts['missing']}, extra {counts['extra']}"
    )
    assert counts["duplicates"] == counts["missing"] == counts["extra"] == 0, counts
    assert counts["committed"] == counts["expected"], counts


async def test_an_instance_killed_and_restarted_under_its_id_takes_its_partitions_back_alone(
    settings: KafkaSettings, instances: Instances, cohort: list[bytes]
) -> None:
    survivor = instances.start("rules-a")
    await wait_for(lambda: ready(survivor), "rules-a to be ready")
    victim = instances.start("rules-b")
    await stable_with(settings, (survivor, "rules-a"), (victim, "rules-b"))
    revoked_before = logged(survivor, "partitions_revoked")
    restored_before = logged(survivor, "partition_restored")

    await publish(settings, keyed(cohort[:4_000]))
    await wait_committed(settings, 2_000, survivor, victim)
    victim.stop(signal.SIGKILL)
    killed = time.perf_counter()
    restarted = instances.start("rules-b")
    await wait_for(lambda: ready(restarted), "rules-b to be ready again under its id")
    back = time.perf_counter() - killed
    await publish(settings, keyed(cohort[4_000:]))
    await consumed(settings, survivor, restarted)

    await exactly_the_replay(settings, cohort, "static members, one SIGKILLed and restarted")
    assert logged(restarted, "partition_restored") >= 1, "the restarted instance took partitions back"
    assert logged(survivor, "partitions_revoked") == revoked_before, "the survivor gave none of its partitions up"
    assert logged(survivor, "partition_restored") == restored_before, "the survivor restored nothing again"
    REPORT.append(f"static members: SIGKILL to ready again under the same id {back:.1f} s (not judged)")
    assert survivor.stop() == 0
    assert restarted.stop() == 0


async def test_a_second_process_under_an_id_in_use_takes_it_over_and_the_first_stops(
    settings: KafkaSettings, instances: Instances, cohort: list[bytes]
) -> None:
    first = instances.start("rules-a")
    await wait_for(lambda: ready(first), "rules-a to be ready")
    other = instances.start("rules-b")
    await stable_with(settings, (first, "rules-a"), (other, "rules-b"))
    await publish(settings, keyed(cohort[:4_000]))
    await wait_committed(settings, 1_500, first, other)

    # A copy of rules-a started by mistake (or by someone who read its name off /metrics).
    impostor = instances.start("rules-a")

    async def first_stopped() -> bool:
        impostor.check_alive()
        other.check_alive()
        return first.proc is not None and first.proc.poll() is not None

    await wait_for(first_stopped, "the process that held rules-a to stop")
    assert first.proc is not None
    assert first.proc.returncode == 2, first.log()[-3000:]
    assert logged(first, "instance_id_taken") == 1
    assert "instance id 'rules-a' was taken by another process" in first.log()
    await publish(settings, keyed(cohort[4_000:]))
    await consumed(settings, impostor, other)
    await stable_with(settings, (impostor, "rules-a"), (other, "rules-b"))

    await exactly_the_replay(settings, cohort, "static members, a second process under an id in use")
    assert logged(impostor, "instance_id_taken") == logged(other, "instance_id_taken") == 0
    assert impostor.stop() == 0
    assert other.stop() == 0
