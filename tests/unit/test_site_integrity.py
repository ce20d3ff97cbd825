"""A participant belongs to its registered site: the core refuses another site's event for it,
the live handler dead-letters it, and replay skips it alike. Each case is what a second site (or
anyone producing to participant-events) would try."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from contracts import ContractError, ParticipantEvent
from events import process
from events.replay import Replay
from events.sites import SITE_MISMATCH, registered_site
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services.replay import replay_stream
from tests.builders import event, event_dict, registered
from tests.unit.test_rules_handler import TOPICS, FakeRecord, handle

HOME, OTHER = "GZ-01", "GZ-02"
PID = "S3-00018"


def at_site(site: str, event_type: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> ParticipantEvent:
    return event(event_type, payload, participant=PID, site=site, **kwargs)


SAE = {"term": "Pneumonia", "ctcae_grade": 3, "serious": True, "crs_grade": 3}


def home_state() -> ParticipantState:
    return process(ParticipantState(PID), registered("2014-01-01", participant=PID, site=HOME), PROTOCOL).state


@pytest.mark.parametrize(
    ("attempt", "why"),
    [
        (at_site(OTHER, "AdverseEventReported", SAE), "an adverse event credited to another site"),
        (at_site(OTHER, "ScreeningLabResulted", {"loinc": "751-8", "value": 0.2, "unit": "10*9/L"}), "a lab result"),
        (at_site(OTHER, "ConsentWithdrawn", {"reason": "moved"}), "a withdrawal of consent"),
        (
            registered("2010-01-01", participant=PID, site=OTHER, at="2025-11-07T10:30:00+08:00"),
            "a second registration that would re-home the participant",
        ),
    ],
)
def test_another_sites_event_for_a_registered_participant_is_refused(attempt: ParticipantEvent, why: str) -> None:
    state = home_state()
    with pytest.raises(ContractError) as refused:
        process(state, attempt, PROTOCOL)
    (violation,) = refused.value.violations
    assert (violation.field, violation.kind) == ("site_id", SITE_MISMATCH), why
    assert all(name in violation.problem for name in (PID, HOME, OTHER))
    assert registered_site(state) == HOME


def test_the_home_site_and_a_registration_there_again_pass() -> None:
    state = home_state()
    step = process(state, at_site(HOME, "AdverseEventReported", SAE), PROTOCOL)
    assert {f.rule_id for f in step.findings} == {"SAFETY-SAE", "SAFETY-CRS3"}
    assert all(f.site_id == HOME for f in step.findings)
    again = registered("2014-01-01", participant=PID, site=HOME, at="2025-11-08T10:30:00+08:00")
    assert registered_site(process(step.state, again, PROTOCOL).state) == HOME


def test_before_any_registration_there_is_no_site_to_compare_with() -> None:
    step = process(ParticipantState(PID), at_site(OTHER, "AdverseEventReported", SAE), PROTOCOL)
    assert step.findings
    assert registered_site(step.state) is None


def test_the_live_handler_dead_letters_it_and_keeps_the_state() -> None:
    states = {PID: home_state()}
    before = states[PID]
    attack = json.dumps(event_dict("AdverseEventReported", SAE, participant=PID, site=OTHER)).encode()
    (out,) = handle(FakeRecord(attack, PID.encode()), states)
    assert out.topic == TOPICS.dead_letter
    assert out.value == attack
    headers = {k: v.decode() for k, v in out.headers}
    assert headers["trialguard.error.field"] == "site_id"
    assert f"registered at ('{HOME}')" in headers["trialguard.error"]
    assert states[PID] is before


def test_replay_reports_and_skips_it_as_the_live_service_does() -> None:
    lines = [
        registered("2014-01-01", participant=PID, site=HOME).model_dump_json(),
        json.dumps(event_dict("AdverseEventReported", SAE, participant=PID, site=OTHER)),
    ]
    replay, out, errors = Replay(PROTOCOL), io.BytesIO(), io.StringIO()
    report = replay_stream(io.BytesIO("\n".join(lines).encode()), out, replay, name="log.jsonl", errors=errors)
    assert out.getvalue() == b""
    assert errors.getvalue().startswith("log.jsonl:2: site_id: 'GZ-02' is not the site")
    assert (report.contract_errors.count, report.contract_errors.first) == (1, [2])
