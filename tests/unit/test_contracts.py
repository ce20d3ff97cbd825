"""Contract v1: what parses, and what is rejected with which field named."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from contracts import EVENT_TYPES, MAX_EVENT_BYTES, MAX_REASON_CHARS, ContractError, DeviationRaised, parse_event
from contracts.limits import excerpt, too_deep
from contracts.participant_events import ScreeningLabResulted
from tests.builders import event_dict, example_lines


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


def _with(
    change: dict[str, Any], payload: dict[str, Any] | None = None, event_type: str = "ParticipantRegistered"
) -> bytes:
    base = event_dict(
        event_type,
        payload
        if payload is not None
        else {"birth_date": "2015-09-14", "sex": "F", "height_cm": 133.0, "weight_kg": 27.5},
    )
    base.update(change)
    return json.dumps({k: v for k, v in base.items() if v is not _DROP}).encode()


_DROP = object()
_REGISTRATION = {"birth_date": "2015-09-14", "sex": "F", "height_cm": 133.0, "weight_kg": 27.5}

REJECTED = [
    # (case, message bytes, field named, words in the problem)
    ("not UTF-8", b'{"event_type": "\xff"}', "<message>", "not UTF-8"),
    ("not JSON", b"{event_type: ConsentSigned", "<message>", "not JSON"),
    ("JSON but not an object", b"[1, 2, 3]", "<message>", "object"),
    ("empty message", b"", "<message>", "not JSON"),
    (
        "unknown event type",
        _with({"event_type": "PatientTeleported"}),
        "event_type",
        "unknown event type 'PatientTeleported'",
    ),
    ("event type missing", _with({"event_type": _DROP}), "event_type", "missing"),
    ("envelope field missing", _with({"participant_id": _DROP}), "participant_id", "missing"),
    (
        "payload field missing",
        _with({}, {k: v for k, v in _REGISTRATION.items() if k != "sex"}),
        "payload.sex",
        "missing",
    ),
    ("timestamp without offset", _with({"occurred_at": "2025-11-03T10:30:00"}), "occurred_at", "offset"),
    ("recorded_at without offset", _with({"recorded_at": "2025-11-03 10:30"}), "recorded_at", "offset"),
    ("negative weight", _with({}, {**_REGISTRATION, "weight_kg": -27.5}), "payload.weight_kg", "greater than or equal"),
    ("zero weight", _with({}, {**_REGISTRATION, "weight_kg": 0}), "payload.weight_kg", "greater than or equal to 0.2"),
    ("weight as a string", _with({}, {**_REGISTRATION, "weight_kg": "27.5"}), "payload.weight_kg", "number"),
    ("weight true", _with({}, {**_REGISTRATION, "weight_kg": True}), "payload.weight_kg", "number"),
    ("NaN weight", _with({}, {**_REGISTRATION, "weight_kg": float("nan")}), "payload.weight_kg", "finite"),
    ("impossible birth date", _with({}, {**_REGISTRATION, "birth_date": "2015-02-30"}), "payload.birth_date", "date"),
    (
        "ECOG 7",
        _with({}, {"scale": "ECOG", "score": 7}, "PerformanceStatusAssessed"),
        "payload.score",
        "less than or equal to 5",
    ),
    (
        "SLEDAI above 105",
        _with({}, {"instrument": "SLEDAI-2K", "score": 106}, "DiseaseActivityScored"),
        "payload.score",
        "105",
    ),
    # Which arms exist is the protocol's to say (events.arms); the contract asks for an identifier.
    ("arm not an identifier", _with({}, {"arm": "mid dose"}, "ParticipantEnrolled"), "payload.arm", "pattern"),
    (
        "bad ISN/RPS class",
        _with({}, {"isn_rps_class": "VII", "active_lesions": True}, "KidneyBiopsyReported"),
        "payload.isn_rps_class",
        "pattern",
    ),
    (
        "lab value free text",
        _with({}, {"loinc": "751-8", "value": "lots", "unit": "x"}, "ScreeningLabResulted"),
        "payload.value",
        "lots",
    ),
    (
        "malformed LOINC",
        _with({}, {"loinc": "75A-8", "value": 1.0, "unit": "x"}, "ScreeningLabResulted"),
        "payload.loinc",
        "pattern",
    ),
    (
        "zero cells infused",
        _with({}, {"total_cells": 0, "weight_kg": 30, "product_lot": "L1"}, "CarTInfused"),
        "payload.total_cells",
        "greater than 0",
    ),
    (
        "CRS grade 6",
        _with({}, {"term": "CRS", "ctcae_grade": 3, "serious": True, "crs_grade": 6}, "AdverseEventReported"),
        "payload.crs_grade",
        "5",
    ),
    ("bad event id", _with({"event_id": "not-a-uuid"}), "event_id", "UUID"),
    ("schema version 2", _with({"schema_version": 2}), "schema_version", "1"),
    ("unknown field", _with({"patient_name": "x"}), "patient_name", "not a field"),
    ("empty key", _with({"": "x"}), '""', "not a field"),
    ("participant id with spaces", _with({"participant_id": "Jane Doe"}), "participant_id", "pattern"),
]


@pytest.mark.parametrize(("data", "field", "words"), [c[1:] for c in REJECTED], ids=[c[0] for c in REJECTED])
def test_input_breaking_the_contract_is_rejected_naming_field_and_problem(data: bytes, field: str, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(data)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_contract_error_summary_names_fields_and_kinds_but_no_values() -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(_with({}, {**_REGISTRATION, "birth_date": "2015-02-30"}))
    assert "payload.birth_date" in caught.value.summary()
    assert "2015" not in caught.value.summary()


def test_contract_error_carries_the_claimed_type_and_id() -> None:
    data = _with({}, {**_REGISTRATION, "weight_kg": -1})
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


# --- bounds: whatever the bytes, a bounded ContractError naming the field ------------------------

_MARKER = "QZXMARKERQZX"
_UUID = "0d420e5c-9fec-5749-a4d6-c92b2665055e"
_FLAGS = ["remission_achieved", "relapse_after_remission", "proteinuria_in_remission", "prior_car_t",
          "kidney_transplant", "malignancy_within_5y", "other_trial_within_3m", "congenital_ig_deficiency",
          "serious_drug_allergy", "uncontrolled_infection", "severe_organ_dysfunction", "severe_cns_or_psychiatric",
          "gilbert_syndrome"]  # fmt: skip


def _padded_to(size: int) -> bytes:
    """A valid event padded with leading whitespace to exactly ``size`` bytes."""
    line = _with({})
    return b" " * (size - len(line)) + line


def _nested(depth: int) -> bytes:
    """A registration whose payload holds an unknown field, making the message ``depth`` levels deep."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)  # the envelope and the payload are two levels
    return _with({}, {**_REGISTRATION, "x": "@@"}).replace(b'"@@"', inner.encode())


def _history(start: str, end: str | None = None) -> bytes:
    treatment = {"agent": "MMF", "start": start, "end": end}
    return _with({}, {"immunosuppressants": [treatment], **dict.fromkeys(_FLAGS, False)}, "MedicalHistoryRecorded")


def _lab(value: float, uln: float | None = None) -> bytes:
    return _with({}, {"loinc": "1742-6", "value": value, "unit": "U/L", "uln": uln}, "ScreeningLabResulted")


def _adverse(term: str, *, nested: bool = False) -> bytes:
    """An adverse event; ``nested``: with an unknown field before ``serious``, 9 levels of arrays deep."""
    message = _with({}, {"term": term, "ctcae_grade": 2, "serious": False}, "AdverseEventReported")
    return message if not nested else message.replace(b'"serious"', b'"x": ' + b"[" * 9 + b"]" * 9 + b', "serious"')


def _registration(**change: Any) -> bytes:
    return _with({}, {**_REGISTRATION, **change})


_RANGE, _OUT = "between 1900-01-01 and 2100-12-31", "date_out_of_range"
_CELLS = {"total_cells": 1e13, "weight_kg": 30.0, "product_lot": "L1"}

BOUNDS = [
    # (case, message bytes, field named, kind, words in the problem)
    ("one byte over the size limit", _padded_to(MAX_EVENT_BYTES + 1), "<message>", "too_large", "65,537 bytes"),
    ("a 500 KB value", _registration(sex="F" * 500_000), "<message>", "too_large", "limit of 65,536"),
    ("nested 9 deep", _nested(9), "<message>", "too_deep", "8 levels"),
    ("nested 8 deep is only an unknown field", _nested(8), "payload.x", "extra_forbidden", "not a field"),
    ("nested 200,000 deep", b"[" * 200_000 + b"]" * 200_000, "<message>", "too_large", "400,000 bytes"),
    ("nested 32,768 deep, within the size", b"[" * 32_768 + b"]" * 32_768, "<message>", "too_deep", "nested"),
    ("objects nested 9 deep", b'{"a":' * 9 + b"1" + b"}" * 9, "<message>", "too_deep", "nested"),
    ("brackets after an escaped backslash count", _adverse("a\\", nested=True), "<message>", "too_deep", "nested"),
    ("occurred_at in 1899", _with({"occurred_at": "1899-12-31T23:59:59Z"}), "occurred_at", _OUT, _RANGE),
    ("occurred_at in 2101", _with({"occurred_at": "2101-01-01T00:00:00Z"}), "occurred_at", _OUT, _RANGE),
    ("occurred_at in year 1", _with({"occurred_at": "0001-01-01T00:00:00+08:00"}), "occurred_at", _OUT, "0001-01-01"),
    ("recorded_at in 9999", _with({"recorded_at": "9999-12-31T23:59:59Z"}), "recorded_at", _OUT, "2100-12-31"),
    ("birth_date in 1899", _registration(birth_date="1899-12-31"), "payload.birth_date", _OUT, _RANGE),
    ("birth_date in 2101", _registration(birth_date="2101-01-01"), "payload.birth_date", _OUT, _RANGE),
    ("treatment start in year 1", _history("0001-01-01"), "payload.immunosuppressants.0.start", _OUT, _RANGE),
    ("huge integer", _registration(weight_kg=10**400), "payload.weight_kg", "finite_number", "integer of 1,329 bits"),
    ("1e309", _registration(weight_kg=1.5).replace(b"1.5", b"1e309"), "payload.weight_kg", "finite_number", "finite"),
    ("-Infinity literal", _registration(weight_kg=-math.inf), "payload.weight_kg", "finite_number", "finite"),
    ("NaN literal", _registration(weight_kg=math.nan), "payload.weight_kg", "finite_number", "finite"),
    ("a lab value of 1e13", _lab(1e13), "payload.value", "less_than_equal", "1000000000000"),
    ("a lab value of 1e-300", _lab(1e-300), "payload.value", "not_measurable", "1e-12"),
    ("a ULN of 5e-324", _lab(2.0, uln=5e-324), "payload.uln", "greater_than_equal", "(got 5e-324)"),
    ("a weight of 1 g", _registration(weight_kg=0.001), "payload.weight_kg", "greater_than_equal", "0.2"),
    ("1e13 cells", _with({}, _CELLS, "CarTInfused"), "payload.total_cells", "less_than_equal", "1000000000000"),
    (
        "UPCR of 1000 mg/mg",
        _with({}, {"description": "x", "upcr_mg_mg": 1e3}, "RelapseReported"),
        "payload.upcr_mg_mg",
        "less_than_equal",
        "100",
    ),
]


@pytest.mark.parametrize(("data", "field", "kind", "words"), [c[1:] for c in BOUNDS], ids=[c[0] for c in BOUNDS])
def test_input_out_of_bounds_is_rejected_naming_field_and_kind(data: bytes, field: str, kind: str, words: str) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(data)
    assert (caught.value.field, caught.value.violations[0].kind) == (field, kind)
    assert words in str(caught.value)


ACCEPTED = [
    ("exactly the size limit", _padded_to(MAX_EVENT_BYTES)),
    ("brackets inside a string are no nesting", _adverse("[[[[{{{{[[[[{{{{ ]]]] }}}}")),
    ("an escaped quote does not end the string", _adverse('say \\" [[[[[[[[[[[[')),
    ("occurred_at on the first instant", _with({"occurred_at": "1900-01-01T00:00:00Z"})),
    ("recorded_at on the last day", _with({"recorded_at": "2100-12-31T23:59:59+00:00"})),
    ("born on 1900-01-01", _registration(birth_date="1900-01-01")),
    ("born on 2100-12-31", _registration(birth_date="2100-12-31")),
    ("a treatment 1900-2100", _history("1900-01-01", "2100-12-31")),
    ("a lab value of 0", _lab(0.0)),
    ("a lab value of 1e12", _lab(1e12)),
]


@pytest.mark.parametrize("data", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_input_on_the_bounds_parses(data: bytes) -> None:
    parse_event(data)


@pytest.mark.parametrize(
    ("text", "deep"),
    [
        ("", False),
        ("[" * 8 + "]" * 8, False),
        ("[" * 9 + "]" * 9, True),
        ("[" * 200_000 + "]" * 200_000, True),
        ("[" * 200_000, True),  # unbalanced: the scan stops at level 9 all the same
        ("]" * 50 + "[" * 8, False),  # stray closing brackets never make room for more
        ('{"a": {"b": ' * 4 + '"{{{{[[[["' + "}" * 8, False),
        ('["' + "[" * 50 + '"]', False),
        (r'["\\"' + "[" * 9, True),  # an escaped backslash, then the string ends
        (r'["\"' + "[" * 9, False),  # an escaped quote: still inside the (unterminated) string
        ("[{}]" * 20, False),  # many openers, little depth
        ("{" * 9, True),
    ],
)
def test_nesting_scan(text: str, deep: bool) -> None:
    assert too_deep(text) is deep


def test_the_reason_is_bounded_whatever_the_value() -> None:
    value = _MARKER + "x" * 60_000  # within the size limit, far beyond any reason
    with pytest.raises(ContractError) as caught:
        parse_event(_registration(sex=value))
    reason = str(caught.value)
    assert len(reason) < 200
    assert "(60,012 characters)" in reason
    assert "…" in reason


def test_the_reason_spells_out_ten_violations_and_counts_the_rest() -> None:
    keys = {f"{_MARKER}{n:04d}": n for n in range(1_000)}
    with pytest.raises(ContractError) as caught:
        parse_event(_registration(**keys))
    error = caught.value
    assert len(error.violations) == 1_000
    assert len(str(error)) <= MAX_REASON_CHARS
    assert str(error).endswith("and 990 more")
    assert error.summary().endswith("and 990 more")
    assert len(error.summary()) <= MAX_REASON_CHARS


def test_summary_says_extra_for_an_unknown_key_and_the_field_cuts_it_short() -> None:
    key = _MARKER + "\u202e\u0000" + "k" * 50_000
    with pytest.raises(ContractError) as caught:
        parse_event(_registration().replace(b'"sex"', json.dumps(key).encode() + b': 1, "sex"'))
    violation = caught.value.violations[0]
    assert caught.value.summary() == "payload.<extra>:extra_forbidden"
    assert violation.field.startswith("payload." + _MARKER)
    assert len(violation.field) <= len("payload.") + 40 + 10  # the mark and the NUL escaped
    assert violation.field.isprintable()
    assert _MARKER not in caught.value.summary()


def test_summary_of_an_unknown_key_that_looks_like_a_birth_date_says_extra() -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(_registration(**{"2015-09-14": "x"}))
    assert caught.value.summary() == "payload.<extra>:extra_forbidden"


@pytest.mark.parametrize(
    ("event_type", "event_id", "claimed"),
    [
        ("ParticipantRegistered", _UUID.upper(), ("ParticipantRegistered", _UUID)),
        (_MARKER, "not-a-uuid", (None, None)),
        ("ParticipantRegistered", "0d420e5c" * 1_000, ("ParticipantRegistered", None)),
    ],
)
def test_the_claimed_identity_is_a_known_type_and_a_uuid_or_nothing(
    event_type: str, event_id: str, claimed: tuple[str | None, str | None]
) -> None:
    with pytest.raises(ContractError) as caught:
        parse_event(_with({"event_type": event_type, "event_id": event_id}, {**_REGISTRATION, "weight_kg": -1}))
    assert (caught.value.event_type, caught.value.event_id) == claimed


def test_a_deep_array_is_a_contract_error_not_a_recursion_error() -> None:
    for depth in (199, 200, 201, 20_000):
        with pytest.raises(ContractError):
            parse_event(b"[" * depth + b"]" * depth)


def test_a_violation_quotes_a_bounded_excerpt() -> None:
    assert excerpt("x" * 500_000).endswith("… (500,000 characters)")
    assert len(excerpt("x" * 500_000)) < 100
    assert excerpt(10**4000) == "an integer of 13,288 bits"
    assert excerpt("\u202e") == "'\\u202e'"


def test_an_event_from_the_services_own_storage_may_exceed_the_message_limit() -> None:
    assert parse_event(_padded_to(MAX_EVENT_BYTES + 1), max_bytes=None).event_type == "ParticipantRegistered"


def test_a_text_message_is_measured_in_bytes_of_utf8() -> None:
    message = _registration(sex="é" * 40_000).decode()  # 40,000 characters, 80,000 bytes
    with pytest.raises(ContractError) as caught:
        parse_event(message)
    assert caught.value.violations[0].kind == "too_large"
    with pytest.raises(ContractError):
        parse_event(_registration().decode().replace("F", "\ud800"))  # a lone surrogate is no UTF-8
