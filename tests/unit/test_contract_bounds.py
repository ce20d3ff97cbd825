"""Contract v1 bounds: whatever the bytes, a bounded ContractError naming the field (what parses
and what is rejected otherwise: test_contracts.py)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from contracts import MAX_EVENT_BYTES, MAX_REASON_CHARS, ContractError, parse_event
from contracts.limits import excerpt, too_deep
from tests.unit.contract_inputs import REGISTRATION, event_with

# --- bounds: whatever the bytes, a bounded ContractError naming the field ------------------------

_MARKER = "QZXMARKERQZX"
_UUID = "0d420e5c-9fec-5749-a4d6-c92b2665055e"
_FLAGS = ["remission_achieved", "relapse_after_remission", "proteinuria_in_remission", "prior_car_t",
          "kidney_transplant", "malignancy_within_5y", "other_trial_within_3m", "congenital_ig_deficiency",
          "serious_drug_allergy", "uncontrolled_infection", "severe_organ_dysfunction", "severe_cns_or_psychiatric",
          "gilbert_syndrome"]  # fmt: skip


def _padded_to(size: int) -> bytes:
    """A valid event padded with leading whitespace to exactly ``size`` bytes."""
    line = event_with({})
    return b" " * (size - len(line)) + line


def _nested(depth: int) -> bytes:
    """A registration whose payload holds an unknown field, making the message ``depth`` levels deep."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)  # the envelope and the payload are two levels
    return event_with({}, {**REGISTRATION, "x": "@@"}).replace(b'"@@"', inner.encode())


def _history(start: str, end: str | None = None) -> bytes:
    treatment = {"agent": "MMF", "start": start, "end": end}
    return event_with({}, {"immunosuppressants": [treatment], **dict.fromkeys(_FLAGS, False)}, "MedicalHistoryRecorded")


def _lab(value: float, uln: float | None = None) -> bytes:
    return event_with({}, {"loinc": "1742-6", "value": value, "unit": "U/L", "uln": uln}, "ScreeningLabResulted")


def _adverse(term: str, *, nested: bool = False) -> bytes:
    """An adverse event; ``nested``: with an unknown field before ``serious``, 9 levels of arrays deep."""
    message = event_with({}, {"term": term, "ctcae_grade": 2, "serious": False}, "AdverseEventReported")
    return message if not nested else message.replace(b'"serious"', b'"x": ' + b"[" * 9 + b"]" * 9 + b', "serious"')


def _registration(**change: Any) -> bytes:
    return event_with({}, {**REGISTRATION, **change})


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
    ("occurred_at in 1899", event_with({"occurred_at": "1899-12-31T23:59:59Z"}), "occurred_at", _OUT, _RANGE),
    ("occurred_at in 2101", event_with({"occurred_at": "2101-01-01T00:00:00Z"}), "occurred_at", _OUT, _RANGE),
    (
        "occurred_at in year 1",
        event_with({"occurred_at": "0001-01-01T00:00:00+08:00"}),
        "occurred_at",
        _OUT,
        "0001-01-01",
    ),
    ("recorded_at in 9999", event_with({"recorded_at": "9999-12-31T23:59:59Z"}), "recorded_at", _OUT, "2100-12-31"),
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
    ("1e13 cells", event_with({}, _CELLS, "CarTInfused"), "payload.total_cells", "less_than_equal", "1000000000000"),
    (
        "UPCR of 1000 mg/mg",
        event_with({}, {"description": "x", "upcr_mg_mg": 1e3}, "RelapseReported"),
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
    ("occurred_at on the first instant", event_with({"occurred_at": "1900-01-01T00:00:00Z"})),
    ("recorded_at on the last day", event_with({"recorded_at": "2100-12-31T23:59:59+00:00"})),
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
        parse_event(event_with({"event_type": event_type, "event_id": event_id}, {**REGISTRATION, "weight_kg": -1}))
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
