"""The live core for months, on a real broker (issue 21, items 1-3): exactly once when the
group's committed offsets are gone (expired after a kill -9), one participant with a runaway
upstream among normal ones, and corrections that cannot apply."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import DeleteGroupsRequest

from contracts import ContractError, ParticipantEvent, encode, parse_event
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings, rules_group_id
from services.metrics import Metrics
from services.rules import RulesService
from tests.builders import event
from tests.integration.cohort import replayed, same_findings, simulated
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import (
    committed_offsets,
    dead_letters,
    findings,
    keyed,
    publish,
    run_until_consumed,
    wait_committed,
    wait_for,
    wait_until_consumed,
)
from tests.journey import ENROLLED, at, journey

pytestmark = pytest.mark.integration


async def delete_group(settings: KafkaSettings) -> bool:
    """Delete the rules group and its committed offsets, as the broker does when they expire
    (``offsets.retention.minutes``, 7 days with the group empty). False while the group still has
    a member (the killed instance's session has not expired yet)."""
    admin = AIOKafkaAdminClient(**settings.client_kwargs())
    await admin.start()
    try:
        group = rules_group_id(settings)
        coordinator = await admin.find_coordinator(group)
        response = await admin._send_request_to_node(coordinator, DeleteGroupsRequest([group]))
    finally:
        await admin.close()
    ((_, error),) = response.results
    return bool(error == 0)


async def test_kill_9_then_the_groups_offsets_expire_duplicates_and_loses_nothing(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("TRIALGUARD_SESSION_TIMEOUT_MS", "6000")
    monkeypatch.setenv("TRIALGUARD_SNAPSHOT_EVERY", "1000")  # kill between rounds: records after the last one
    stream = simulated(tmp_path, 120, 5, 8_000)
    service = rules_service()
    await publish(settings, keyed(stream))
    await wait_committed(settings, len(stream) // 2, service)
    service.stop(signal.SIGKILL)

    await wait_for(lambda: delete_group(settings), "the killed instance's session to expire and its group to go")
    assert await committed_offsets(settings) == {}
    service = rules_service()
    await wait_until_consumed(settings, service.check_alive)

    same_findings(await findings(settings), replayed(stream))
    assert await dead_letters(settings) == []
    restored = [json.loads(line) for line in service.log().splitlines() if '"partition_restored"' in line]
    assert any(r["committed_offset"] > 0 for r in restored), "restored from the progress records"
    assert '"group_offset_ignored"' in service.log()


RUNAWAY_EVENTS = 100_000
RUNAWAY_BOUND = 60
"""The state bound of this test's service and replay (the default is 250: the same mechanism,
reached after fewer events)."""


def runaway(participant: str, events: int) -> list[bytes]:
    """``events`` screening results of one participant, each with an event id of its own: an
    upstream resending in a loop."""
    body = json.loads(encode(parse_event(_LAB_TEMPLATE.replace("PID", participant))))
    first = json.dumps(body).encode()
    known = str(body["event_id"]).encode()
    return [first.replace(known, str(uuid.UUID(int=n + 1)).encode()) for n in range(events)]


_LAB_TEMPLATE = json.dumps(
    {
        "event_id": "00000000-0000-0000-0000-000000000000",
        "event_type": "ScreeningLabResulted",
        "schema_version": 1,
        "study_id": "NCT06904729",
        "site_id": "GZ-01",
        "participant_id": "PID",
        "occurred_at": "2025-11-06T10:30:00+08:00",
        "recorded_at": "2025-11-06T10:30:00+08:00",
        "source": {"system": "lims", "actor": "loop"},
        "payload": {"loinc": "751-8", "value": 2.1, "unit": "10*9/L", "uln": None},
    }
)


async def test_a_participant_with_100000_events_is_dead_lettered_and_the_others_go_on(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    cohort = simulated(tmp_path, 40, 3, 3_000)
    flood = runaway("P-RUNAWAY", RUNAWAY_EVENTS)
    # The flood in the middle of the cohort: the participants after it share its partition.
    log = [*cohort[:1_500], *flood, *cohort[1_500:]]
    await publish(settings, keyed(log))
    metrics = Metrics()
    service = RulesService(settings, PROTOCOL, session_timeout_ms=6_000, max_kept_facts=RUNAWAY_BOUND, metrics=metrics)
    await run_until_consumed(service, settings)

    replay, refused = Replay(PROTOCOL, max_kept_facts=RUNAWAY_BOUND), 0
    expected = []
    for line in log:
        try:
            expected += [json.loads(encode(f)) for f in replay.feed(parse_event(line))]
        except ContractError:
            refused += 1
    assert refused > RUNAWAY_EVENTS - RUNAWAY_BOUND
    same_findings(await findings(settings), expected)
    others = [json.loads(line) for line in cohort]
    assert same_by_participant(await findings(settings), replayed(cohort), {e["participant_id"] for e in others})
    dead = await dead_letters(settings)
    assert len(dead) == refused
    assert {dict(d.headers)["trialguard.error.field"] for d in dead} == {b"participant_id"}
    assert all(d.key == b"P-RUNAWAY" for d in dead)
    assert metrics.outcomes["participant_state_full"] == refused


def same_by_participant(live: list[dict[str, object]], offline: list[dict[str, object]], pids: set[object]) -> bool:
    """Whether the findings of ``pids`` are the same, live and offline (the bound changes none of theirs)."""

    def of(found: list[dict[str, object]]) -> list[str]:
        return sorted(json.dumps(f, sort_keys=True) for f in found if f["participant_id"] in pids)

    return of(live) == of(offline)


async def test_corrections_that_cannot_apply_are_dead_lettered_or_counted_live_as_replay_reports_them(
    settings: KafkaSettings,
) -> None:
    events = journey(labs={"alt": (160, "U/L", 40)}, treat=False)
    alt = next(e for e in events if e.event_type == "ScreeningLabResulted" and e.payload.loinc == "1742-6")
    day = at(ENROLLED + 2, "09:00:00")
    in_mg_per_dl = event("LabResultCorrected", {"corrected_event_id": str(alt.event_id), "value": 80,
                                                "unit": "mg/dL", "uln": 40}, at=day)  # fmt: skip
    of_nothing = event("LabResultRetracted", {"retracted_event_id": str(uuid.UUID(int=7))}, at=day)
    log = [*events, in_mg_per_dl, of_nothing]
    await publish(settings, [(e.participant_id.encode(), encode(e)) for e in log])
    metrics = Metrics()
    await run_until_consumed(RulesService(settings, PROTOCOL, session_timeout_ms=6_000, metrics=metrics), settings)

    replay, rejected = Replay(PROTOCOL), []
    for e in log:
        try:
            replay.feed(e)
        except ContractError as error:
            rejected.append((error.event_id, error.field))
    assert rejected == [(str(in_mg_per_dl.event_id), "payload.unit")]
    assert replay.unmatched_corrections == 1
    (dead,) = await dead_letters(settings)
    assert dead.value == encode(in_mg_per_dl)
    assert dict(dead.headers)["trialguard.error.field"] == b"payload.unit"
    assert metrics.outcomes == {"correction_unmatched": 1}
    same_findings(await findings(settings), expected_findings(log))


def expected_findings(log: list[ParticipantEvent]) -> list[dict[str, object]]:
    """What a replay publishes of ``log`` (its contract errors skipped)."""
    replay, found = Replay(PROTOCOL), []
    for e in log:
        try:
            found += [json.loads(encode(f)) for f in replay.feed(e)]
        except ContractError:
            continue
    return found


async def test_participants_between_rounds_are_put_at_rest_and_their_findings_stay_exact(
    settings: KafkaSettings, tmp_path: Path
) -> None:
    """What a partition holds in memory follows the participants worked on since the last round,
    not all it has seen (``services.rules.restored``): the others are at rest on local disk, and
    decoded again, equal, when an event of theirs comes."""
    # Participants one after another (each one's own order kept), so that most have finished by the end.
    by_participant: dict[str, list[bytes]] = {}
    for line in simulated(tmp_path, 120, 11, 12_000):
        by_participant.setdefault(json.loads(line)["participant_id"], []).append(line)
    stream = [line for lines in by_participant.values() for line in lines]
    await publish(settings, keyed(stream))
    metrics = Metrics()
    service = RulesService(settings, PROTOCOL, session_timeout_ms=6_000, snapshot_every=300, metrics=metrics)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await wait_until_consumed(settings, lambda: None if not task.done() else task.result())
        in_memory, at_rest = metrics.participants()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert in_memory + at_rest == len(by_participant)
    assert at_rest > 3 * in_memory, (in_memory, at_rest)
    same_findings(await findings(settings), replayed(stream))
