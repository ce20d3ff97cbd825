"""The rules service's per-record handler, without a broker: routing to deviations or dead-letter."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import structlog

from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services.kafka import KafkaSettings
from services.rules import MAX_DEAD_LETTER_BYTES, MAX_HEADER_CHARS, Outgoing, RulesService
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


# --- what the service prints stays safe -----------------------------------------------------

SECRET = "SECRET-2011-02-03"
"""A value planted in hostile input: it must reach neither a log line nor an unbounded header."""


def registration(**payload_changes: object) -> dict[str, object]:
    body = event_dict(
        "ParticipantRegistered", {"birth_date": "2011-02-03", "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}
    )
    body["payload"] = {**body["payload"], **payload_changes}
    return body


def handled_with_logs(record: FakeRecord) -> tuple[list[Outgoing], str]:
    with structlog.testing.capture_logs() as logs:
        out = handle(record)
    return out, repr(logs)


@pytest.mark.parametrize(
    "value",
    [
        json.dumps(registration(sex=SECRET * 30_000)).encode(),  # a 500 KB field value
        json.dumps(registration(**{SECRET * 1_000: 1})).encode(),  # an unknown key chosen by the input
        json.dumps(registration(birth_date=SECRET)).encode(),
        json.dumps({**registration(), "event_id": SECRET * 10_000}).encode(),
        json.dumps({**registration(), "event_type": SECRET}).encode(),
    ],
    ids=["huge-value", "huge-unknown-key", "bad-birth-date", "huge-event-id", "unknown-type"],
)
def test_hostile_input_gives_a_bounded_reason_and_logs_no_value(value: bytes) -> None:
    (out,), logs = handled_with_logs(FakeRecord(value, b"P-0001"))
    assert out.topic == TOPICS.dead_letter
    assert out.value == value, "the dead-letter copy keeps the original bytes"
    reason = headers(out)["trialguard.error"]
    assert 0 < len(reason) <= MAX_HEADER_CHARS
    assert len(headers(out)["trialguard.error.field"]) <= MAX_HEADER_CHARS
    assert SECRET not in logs
    assert "2011-02-03" not in logs


def test_a_huge_key_gives_a_bounded_reason() -> None:
    (out,) = handle(FakeRecord(lab_before_consent(), b"K" * 500_000))
    assert len(headers(out)["trialguard.error"]) <= MAX_HEADER_CHARS


def test_a_record_too_big_for_the_dead_letter_topic_keeps_a_prefix_and_says_so() -> None:
    value = b'{"x": "' + b"A" * (2 * MAX_DEAD_LETTER_BYTES) + b'"}'  # decompressed, a record can be this big
    (out,) = handle(FakeRecord(value, b"P-0001"))
    assert len(out.value or b"") + len(out.key or b"") <= MAX_DEAD_LETTER_BYTES
    assert value.startswith(out.value or b"-")
    h = headers(out)
    assert int(h["trialguard.original.bytes"]) == len(value) + len(b"P-0001")
    assert len(h["trialguard.original.sha256"]) == 64


def test_a_valid_event_is_processed_without_logging_its_values() -> None:
    value = json.dumps(registration()).encode()
    out, logs = handled_with_logs(FakeRecord(value, b"P-0001"))
    assert out == []
    assert "2011-02-03" not in logs


def test_a_core_exception_dead_letters_the_record_and_logs_no_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise ValueError(f"cannot handle {SECRET}")

    monkeypatch.setattr("services.rules.records.process", broken)
    (out,), logs = handled_with_logs(FakeRecord(lab_before_consent(), b"P-0001"))
    assert out.topic == TOPICS.dead_letter
    assert headers(out)["trialguard.error"] == "protocol core raised ValueError"
    assert "core_failed" in logs
    assert SECRET not in logs


def test_a_parser_exception_dead_letters_the_record(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_: bytes) -> None:
        raise RecursionError(f"too deep at {SECRET}")

    monkeypatch.setattr("services.rules.records.parse_event", broken)
    (out,), logs = handled_with_logs(FakeRecord(lab_before_consent(), b"P-0001"))
    assert out.topic == TOPICS.dead_letter
    assert headers(out)["trialguard.error"] == "the contract parser raised RecursionError"
    assert SECRET not in logs
