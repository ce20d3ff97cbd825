"""A lab correction live on a real broker: ALT 4×ULN at screening raises ELIG-IN09 at enrollment;
the lab corrects it to 2×ULN after enrollment, and the rules service publishes FindingSuperseded
for it on the deviations topic (the deviation itself stays as committed), exactly as replay does.

The correction arrives after a restart, so the service decides it from the state snapshot
(version 3: the screening record kept at enrollment) rather than from memory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from contracts import ParticipantEvent, encode
from contracts.participant_events import ScreeningLabResulted
from events.replay import Replay
from protocol.registry import versions_for
from services.audit.diff import compare
from services.audit.recompute import InputRecord, new_replay, recompute, records_from_topic
from services.kafka import KafkaSettings
from services.rules import RulesService
from tests.builders import event
from tests.integration.kafka_support import findings, publish, run_until_consumed
from tests.journey import ENROLLED, at, journey

pytestmark = pytest.mark.integration


async def run_service_until_consumed(settings: KafkaSettings, events: Sequence[ParticipantEvent]) -> None:
    """Publish ``events``, run an in-process rules service until it has consumed them all, stop it."""
    await publish(settings, [(e.participant_id.encode(), encode(e)) for e in events])
    service = RulesService(settings, versions_for(settings.study_id), session_timeout_ms=6_000)
    await run_until_consumed(service, settings)


async def test_a_correction_after_enrollment_supersedes_the_deviation_live_as_in_replay(
    settings: KafkaSettings,
) -> None:
    screening_and_enrollment = journey(labs={"alt": (160, "U/L", 40)}, treat=False)
    (alt,) = (
        e for e in screening_and_enrollment if isinstance(e, ScreeningLabResulted) and e.payload.loinc == "1742-6"
    )
    correction = event(
        "LabResultCorrected",
        {"corrected_event_id": str(alt.event_id), "value": 80, "unit": "U/L", "uln": 40},
        at=at(ENROLLED + 2, "09:00:00"),
    )

    await run_service_until_consumed(settings, screening_and_enrollment)
    assert [f["rule_id"] for f in await findings(settings)] == ["ELIG-IN09"]
    await run_service_until_consumed(settings, [correction])  # a new service: state from the snapshot

    live = await findings(settings)
    assert [(f["event_type"], f["rule_id"]) for f in live] == [
        ("DeviationRaised", "ELIG-IN09"),
        ("FindingSuperseded", "ELIG-IN09"),
    ]
    raised, superseded = live
    assert superseded["finding_id"] == raised["deviation_id"]
    assert superseded["superseded_by_event_id"] == str(correction.event_id)
    assert superseded["reason"].startswith(f"no longer holds after correction {correction.event_id}: ")

    replay = Replay(versions_for(settings.study_id))
    replayed = [json.loads(encode(f)) for e in [*screening_and_enrollment, correction] for f in replay.feed(e)]
    assert live == replayed

    # audit diff: what participant-events recomputes equals what was committed, FindingSuperseded included
    records: list[InputRecord] = [r async for r in records_from_topic(settings)]
    recomputed = recompute(records, new_replay(settings.study_id), source="participant-events")
    diff = compare(recomputed.finding_objects(), live)
    assert diff.equal, diff
    assert diff.same == 2
