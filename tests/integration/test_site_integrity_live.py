"""Site integrity on a real broker: a producer writing straight to participant-events (no gateway
in the way) cannot raise findings in another site's participant — the live rules service
dead-letters the event with a bounded reason, and the offline replay of the same log agrees."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from contracts import encode, parse_event
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings
from tests.builders import event_dict
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import dead_letters, findings, keyed, publish, wait_until_consumed

pytestmark = pytest.mark.integration

VICTIM = "S3-00018"
BORN = {"birth_date": "2014-01-01", "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}
SAE = {"term": "Cytokine release syndrome", "ctcae_grade": 3, "serious": True, "crs_grade": 3}


def _line(event_type: str, payload: dict[str, object], site: str, at: str) -> bytes:
    return json.dumps(event_dict(event_type, payload, participant=VICTIM, site=site, at=at)).encode()


LOG = [
    _line("ParticipantRegistered", BORN, "GZ-01", "2025-11-01T09:00:00+08:00"),
    # GZ-02 (or anyone with produce rights) writes into GZ-01's participant, then tries to re-home it:
    _line("AdverseEventReported", SAE, "GZ-02", "2025-11-02T09:00:00+08:00"),
    _line("ParticipantRegistered", BORN, "GZ-02", "2025-11-03T09:00:00+08:00"),
    _line("AdverseEventReported", SAE, "GZ-02", "2025-11-04T09:00:00+08:00"),
    # GZ-01's own report of the same kind raises its alerts as ever:
    _line("AdverseEventReported", SAE, "GZ-01", "2025-11-05T09:00:00+08:00"),
]


async def test_another_sites_events_are_dead_lettered_live_and_skipped_by_replay(
    settings: KafkaSettings, rules_service: Callable[[], ServiceProcess]
) -> None:
    service = rules_service()
    await publish(settings, keyed(LOG))
    await wait_until_consumed(settings, service.check_alive)

    dead = await dead_letters(settings)
    assert [record.value for record in dead] == LOG[1:4]
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers}
        assert headers["trialguard.error.field"] == "site_id"
        assert f"participant '{VICTIM}' is registered at ('GZ-01')" in headers["trialguard.error"]

    found = await findings(settings)
    assert sorted(f["rule_id"] for f in found) == ["SAFETY-CRS3", "SAFETY-SAE"]
    assert {f["site_id"] for f in found} == {"GZ-01"}
    assert {tuple(f["trigger_event_ids"]) for f in found} == {(json.loads(LOG[4])["event_id"],)}

    replay, replayed = Replay(PROTOCOL), []
    for line in LOG:
        try:
            replayed += [json.loads(encode(f)) for f in replay.feed(parse_event(line))]
        except ValueError:
            continue  # the ContractError replay reports and skips, as the service dead-letters
    assert replayed == found
