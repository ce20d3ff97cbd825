"""A protocol amendment live on a real broker: the rules service decides each event under the
version in force at its local date and site, as replay does, and names that version.

The amendments (v1.1, a 42-day screening window; and tests/amendment.py's, which changes limits,
schedule and rules at once) exist only in the tests and are injected into an in-process
``RulesService``: the seam is its ``protocol`` argument, a ``ProtocolHistory``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from contracts import ParticipantEvent, encode
from events.replay import Replay
from protocol import ProtocolHistory, amended
from protocol.fingerprint import fingerprint
from protocol.nct06904729 import PROTOCOL
from protocol.registry import versions_for
from services.kafka import KafkaSettings
from services.rules import RulesService
from tests import amendment
from tests.integration.kafka_support import findings, publish, run_until_consumed
from tests.journey import journey

pytestmark = pytest.mark.integration

AMENDED_FROM = dt.date(2025, 12, 13)
"""One month after the journey's enrollment on 2025-11-13: P-0001 enrolls before, P-0002 after."""

HISTORY: ProtocolHistory = versions_for("NCT06904729").with_version(
    amended(PROTOCOL, "1.1", AMENDED_FROM, {"screening_window_days": 42})
)


def stream() -> list[ParticipantEvent]:
    """Two participants with the same outdated screening labs (29 days before enrollment), the
    second 60 days later: outdated under v1.0's 28-day window, fine under v1.1's 42 days."""
    shift = dt.timedelta(days=60)
    first = journey(pid="P-0001", consent_day=-30, lab_day=-19)
    second = [
        e.model_copy(update={"occurred_at": e.occurred_at + shift, "recorded_at": e.recorded_at + shift})
        for e in journey(pid="P-0002", consent_day=-30, lab_day=-19)
    ]
    return [*first, *second]


async def test_the_live_service_decides_under_the_version_in_force_like_replay(settings: KafkaSettings) -> None:
    events = stream()
    await publish(settings, [(e.participant_id.encode(), encode(e)) for e in events])
    service = RulesService(settings, HISTORY, session_timeout_ms=6_000)
    await run_until_consumed(service, settings)

    live = await findings(settings)
    assert [(f["participant_id"], f["rule_id"], f["protocol_version"]) for f in live] == [
        ("P-0001", "ELIG-MISSING", "1.0")
    ]
    assert live[0]["evidence"]["screening_window_days"] == 28
    assert live[0]["ruleset_fingerprint"] == fingerprint(PROTOCOL)

    replay = Replay(HISTORY)
    replayed = [json.loads(encode(f)) for e in events for f in replay.feed(e)]
    assert live == replayed

    # The same stream under v1.0 alone: P-0002's labs are outdated too.
    only_v10 = Replay(versions_for("NCT06904729"))
    assert [f.participant_id for e in events for f in only_v10.feed(e)] == ["P-0001", "P-0002"]


async def test_an_amendment_of_limits_schedule_and_rules_switches_live_at_its_date_and_site(
    settings: KafkaSettings,
) -> None:
    """The test amendment of tests/amendment.py (transaminase limit raised, M3 window widened,
    ELIG-IN10 removed, ELIG-IN12 added), live: each finding is decided under the version in force
    at its event's date and site and names it, exactly as replay decides."""
    events = amendment.stream()
    await publish(settings, [(e.participant_id.encode(), encode(e)) for e in events])
    service = RulesService(settings, amendment.HISTORY, session_timeout_ms=6_000)
    await run_until_consumed(service, settings)

    # Partitions are read one after the other: each participant's findings in order, participants in any.
    live = sorted(await findings(settings), key=lambda f: str(f["participant_id"]))
    assert [(f["participant_id"], f["rule_id"], f["protocol_version"]) for f in live] == amendment.EXPECTED
    for f in live:
        assert f["ruleset_fingerprint"] == fingerprint(amendment.HISTORY.version(f["protocol_version"]))
    visit = next(f for f in live if f["rule_id"] == "VISIT-01")
    assert visit["evidence"]["visit_window"] == "day 83..97"  # v1.0's M3 window, P-0002's visit before the date

    replay = Replay(amendment.HISTORY)
    replayed = [json.loads(encode(f)) for e in events for f in replay.feed(e)]
    assert live == sorted(replayed, key=lambda f: str(f["participant_id"]))
