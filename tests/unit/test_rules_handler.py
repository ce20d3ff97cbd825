"""The rules service's per-record handler, without a broker: routing to deviations or dead-letter."""

from __future__ import annotations

import json
from dataclasses import dataclass

from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings
from services.rules import Outgoing, RulesService
from tests.builders import event_dict

SETTINGS = KafkaSettings("127.0.0.1:1", "NCT06904729", "unit")
TOPICS = SETTINGS.topics


@dataclass
class FakeRecord:
    value: bytes | None
    key: bytes | None
    topic: str = TOPICS.participant_events
    partition: int = 2
    offset: int = 41


def lab_before_consent(participant: str = "P-0001", study: str = "NCT06904729") -> bytes:
    return json.dumps(
        event_dict(
            "ScreeningLabResulted",
            {"loinc": "751-8", "value": 2.1, "unit": "10*9/L"},
            participant=participant,
            study=study,
        )
    ).encode()


def handle(record: FakeRecord, states: dict[str, ParticipantState] | None = None) -> list[Outgoing]:
    return RulesService(SETTINGS, PROTOCOL).handle(record, {} if states is None else states)


def test_a_finding_goes_to_deviations_keyed_by_participant() -> None:
    states: dict[str, ParticipantState] = {}
    (out,) = handle(FakeRecord(lab_before_consent(), b"P-0001"), states)
    assert out.topic == TOPICS.deviations
    assert out.key == b"P-0001"
    assert json.loads(out.value or b"")["rule_id"] == "CONSENT-01"
    assert "P-0001" in states


def headers(out: Outgoing) -> dict[str, str]:
    return {k: v.decode() for k, v in out.headers}


def test_broken_input_goes_to_dead_letter_with_reason_bytes_and_origin() -> None:
    (out,) = handle(FakeRecord(b"{oops", b"P-0001"))
    assert out.topic == TOPICS.dead_letter
    assert out.value == b"{oops"
    assert out.key == b"P-0001"
    h = headers(out)
    assert h["trialguard.error"].startswith("<message>: not JSON")
    assert h["trialguard.error.field"] == "<message>"
    assert (h["trialguard.source.topic"], h["trialguard.source.partition"], h["trialguard.source.offset"]) == (
        TOPICS.participant_events,
        "2",
        "41",
    )


def test_a_message_without_key_is_dead_lettered() -> None:
    (out,) = handle(FakeRecord(lab_before_consent(), None))
    assert out.topic == TOPICS.dead_letter
    assert headers(out)["trialguard.error"] == "<key>: missing: the message key must be the participant_id"


def test_a_key_other_than_the_participant_is_dead_lettered() -> None:
    (out,) = handle(FakeRecord(lab_before_consent("P-0001"), b"P-0002"))
    assert out.topic == TOPICS.dead_letter
    assert "differs from participant_id 'P-0001'" in headers(out)["trialguard.error"]


def test_an_event_of_another_study_is_dead_lettered() -> None:
    (out,) = handle(FakeRecord(lab_before_consent(study="NCT00000001"), b"P-0001"))
    assert out.topic == TOPICS.dead_letter
    assert headers(out)["trialguard.error.field"] == "study_id"


def test_a_replayed_record_rebuilds_state_without_logging(capsys) -> None:  # type: ignore[no-untyped-def]
    states: dict[str, ParticipantState] = {}
    RulesService(SETTINGS, PROTOCOL).handle(FakeRecord(lab_before_consent(), b"P-0001"), states, replaying=True)
    assert "CONSENT-01" in states["P-0001"].raised
    assert "finding_raised" not in capsys.readouterr().err
