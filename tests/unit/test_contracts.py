"""Contract v1: what parses, and what is rejected with which field named (bounds:
test_contract_bounds.py)."""

from __future__ import annotations

import json

import pytest

from contracts import EVENT_TYPES, ContractError, DeviationRaised, parse_event
from contracts.participant_events import ScreeningLabResulted
from tests.builders import event_dict, example_lines
from tests.unit.contract_inputs import DROP, REGISTRATION, event_with


def test_every_example_event_parses_to_its_type() -> None:
    for line in example_lines():
        event = parse_event(line)
        assert type(event).__name__ == json.loads(line)["event_type"]


def test_catalogue_has_every_participant_event_type_of_the_design() -> None:
    assert set(EVENT_TYPES) == {
        "ParticipantRegistered",
        "ConsentSigned",
        "ConsentWithdrawn",
        "ScreeningLabResulted",
        "LabResultCorrected",
        "LabResultRetracted",
        "KidneyBiopsyReported",
        "DiseaseActivityScored",
        "SLEClassificationScored",
        "BilagAssessed",
        "MedicalHistoryRecorded",
        "ConcomitantMedicationRecorded",
        "PerformanceStatusAssessed",
        "EligibilityConfirmed",
        "ParticipantEnrolled",
        "LeukapheresisPerformed",
        "LymphodepletionAdministered",
        "CarTInfused",
        "AdverseEventReported",
        "FollowUpVisitCompleted",
        "RelapseReported",
        "ParticipantWithdrawn",
        "ClockTicked",
    }


def test_titre_and_qualitative_values_stay_strings_numbers_become_floats() -> None:
    titre = parse_event(
        json.dumps(event_dict("ScreeningLabResulted", {"loinc": "5048-4", "value": "1:160", "unit": "{titer}"}))
    )
    count = parse_event(
        json.dumps(event_dict("ScreeningLabResulted", {"loinc": "751-8", "value": 2, "unit": "10*9/L"}))
    )
    assert isinstance(titre, ScreeningLabResulted)
    assert titre.payload.value == "1:160"
    assert isinstance(count, ScreeningLabResulted)
    assert count.payload.value == 2.0


REJECTED = [
    # (case, message bytes, field named, words in the problem)
    ("not UTF-8", b'{"event_type": "\xff"}', "<message>", "not UTF-8"),
    ("not JSON", b"{event_type: ConsentSigned", "<message>", "not JSON"),
    ("JSON but not an object", b"[1, 2, 3]", "<message>", "object"),
    ("empty message", b"", "<message>", "not JSON"),
    (
        "unknown event type",
        event_with({"event_type": "PatientTeleported"}),
        "event_type",
        "unknown event type 'PatientTeleported'",
    ),
    ("event type missing", event_with({"event_type": DROP}), "event_type", "missing"),
    ("envelope field missing", event_with({"participant_id": DROP}), "participant_id", "missing"),
    (
        "payload field missing",
        event_with({}, {k: v for k, v in REGISTRATION.items() if k != "sex"}),
        "payload.sex",
        "missing",
    ),
    ("timestamp without offset", event_with({"occurred_at": "2025-11-03T10:30:00"}), "occurred_at", "offset"),
    ("recorded_at without offset", event_with({"recorded_at": "2025-11-03 10:30"}), "recorded_at", "offset"),
    (
        "negative weight",
        event_with({}, {**REGISTRATION, "weight_kg": -27.5}),
        "payload.weight_kg",
        "greater than or equal",
    ),
    (
        "zero weight",
        event_with({}, {**REGISTRATION, "weight_kg": 0}),
        "payload.weight_kg",
        "greater than or equal to 0.2",
    ),
    ("weight as a string", event_with({}, {**REGISTRATION, "weight_kg": "27.5"}), "payload.weight_kg", "number"),
    ("weight true", event_with({}, {**REGISTRATION, "weight_kg": True}), "payload.weight_kg", "number"),
    ("NaN weight", event_with({}, {**REGISTRATION, "weight_kg": float("nan")}), "payload.weight_kg", "finite"),
    (
        "impossible birth date",
        event_with({}, {**REGISTRATION, "birth_date": "2015-02-30"}),
        "payload.birth_date",
        "date",
    ),
    (
        "ECOG 7",
        event_with({}, {"scale": "ECOG", "score": 7}, "PerformanceStatusAssessed"),
        "payload.score",
        "less than or equal to 5",
    ),
    (
        "SLEDAI above 105",
        event_with({}, {"instrument": "SLEDAI-2K", "score": 106}, "DiseaseActivityScored"),
        "payload.score",
        "105",
    ),
    # Which arms exist is the protocol's to say (events.arms); the contract asks for an identifier.
    ("arm not an identifier", event_with({}, {"arm": "mid dose"}, "ParticipantEnrolled"), "payload.arm", "pattern"),
    (
        "bad ISN/RPS class",
        event_with({}, {"isn_rps_class": "VII", "active_lesions": True}, "KidneyBiopsyReported"),
        "payload.isn_rps_class",
        "pattern",
    ),
    (
        "lab value free text",
        event_with({}, {"loinc": "751-8", "value": "lots", "unit": "x"}, "ScreeningLabResulted"),
        "payload.value",
        "lots",
    ),
    (
        "malformed LOINC",
        event_with({}, {"loinc": "75A-8", "value": 1.0, "unit": "x"}, "ScreeningLabResulted"),
        "payload.loinc",
        "pattern",
    ),
    (
        "zero cells infused",
        event_with({}, {"total_cells": 0, "weight_kg": 30, "product_lot": "L1"}, "CarTInfused"),
        "payload.total_cells",
        "greater than 0",
    ),
    (
        "CRS grade 6",
        event_with({}, {"term": "CRS", "ctcae_grade": 3, "serious": True, "crs_grade": 6}, "AdverseEventReported"),
        "payload.crs_grade",
        "5",
    ),
    ("bad event id", event_with({"event_id": "not-a-uuid"}), "event_id", "UUID"),
    ("schema version 2", event_with({"schema_version": 2}), "schema_version", "1"),
    ("unknown field", event_with({"patient_name": "x"}), "patient_name", "not a field"),
    ("empty key", event_with({"": "x"}), '""', "not a field"),
    ("participant id with spaces", event_with({"participant_id": "Jane Doe"}), "participant_id", "pattern"),
]


@pytest.mark.parametrize(("data", "field", "words"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_input_breaking_the_contract_is_rejected_naming_field_and_problem(data: bytes, field: str, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(data)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_contract_error_summary_names_fields_and_kinds_but_no_values() -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(event_with({}, {**REGISTRATION, "birth_date": "2015-02-30"}))
    assert "payload.birth_date" in caught.value.summary()
    assert "2015" not in caught.value.summary()


def test_contract_error_carries_the_claimed_type_and_id() -> None:
    data = event_with({}, {**REGISTRATION, "weight_kg": -1})
    with pytest.raises(ContractError) as caught:
        parse_event(data)
    assert caught.value.event_type == "ParticipantRegistered"
    assert caught.value.event_id == json.loads(data)["event_id"]


def test_a_deviation_round_trips_through_json() -> None:
    deviation = DeviationRaised.model_validate(
        {
            "deviation_id": "3b9789f2-0408-58ed-880a-690a3df0238f",
            "study_id": "NCT06904729",
            "site_id": "GZ-01",
            "participant_id": "E-03",
            "rule_id": "CONSENT-01",
            "protocol_version": "1.0",
            "category": "INFORMED CONSENT",
            "severity": "important",
            "term": "t",
            "protocol_reference": "Inclusion 8",
            "occurred_at": "2025-11-29T10:30:00+08:00",
            "trigger_event_ids": ["7b1b7955-7c99-5f54-8f92-28dfab9a79bf"],
            "evidence": {"procedure": "x"},
        }
    )
    assert DeviationRaised.model_validate_json(deviation.model_dump_json()) == deviation
