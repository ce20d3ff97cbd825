"""The trial-neutral additions to contract v1, table by table: each new field accepted where it
fits, refused (naming the field) where it cannot be right, and no v1 event of the first release
reading differently."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts import ContractError, parse_event
from contracts.participant_events import ConcomitantMedication, DiseaseActivityScored
from events.fold import fold
from events.replay import Replay
from events.snapshots import decode, encode
from protocol.drugs import is_colony_stimulating_factor
from protocol.model import Arm
from protocol.registry import versions_for
from protocol.state import ParticipantState
from tests.builders import event_dict, example_lines


def _parse(event_type: str, payload: dict[str, Any]) -> Any:
    return parse_event(json.dumps(event_dict(event_type, payload)))


def _refused(event_type: str, payload: dict[str, Any]) -> ContractError:
    with pytest.raises(ContractError) as caught:
        _parse(event_type, payload)
    return caught.value


def test_every_v1_example_event_still_parses_and_reencodes_to_the_same_payload() -> None:
    for line in example_lines():
        event = parse_event(line)
        wire = json.loads(line)
        dumped = json.loads(event.model_dump_json())
        # New optional fields are written as null; every field the event had is unchanged.
        assert _without_new_nulls(dumped["payload"], wire["payload"]) == wire["payload"]


def _without_new_nulls(dumped: Any, wire: Any) -> Any:
    """``dumped`` without the null fields ``wire`` does not have, at any depth."""
    if isinstance(dumped, dict) and isinstance(wire, dict):
        return {k: _without_new_nulls(v, wire.get(k)) for k, v in dumped.items() if k in wire or v is not None}
    if isinstance(dumped, list) and isinstance(wire, list):
        return [_without_new_nulls(d, w) for d, w in zip(dumped, wire, strict=True)]
    return dumped


# --- scored instruments -------------------------------------------------------------------------

INSTRUMENTS_ACCEPTED = [
    ("SLEDAI-2K", 12, None),
    ("SLEDAI-2K", 0, "2K"),
    ("SELENA-SLEDAI", 105, "SRI-4"),
    ("PGA", 0.5, None),
    ("PGA", 3, None),
    ("PGA", 0.0, None),
]


@pytest.mark.parametrize(("instrument", "score", "version"), INSTRUMENTS_ACCEPTED)
def test_scored_instruments_by_name_and_version(instrument: str, score: float, version: str | None) -> None:
    payload: dict[str, Any] = {"instrument": instrument, "score": score}
    if version is not None:
        payload["instrument_version"] = version
    event = _parse("DiseaseActivityScored", payload)
    assert isinstance(event, DiseaseActivityScored)
    assert (event.payload.instrument, event.payload.score, event.payload.instrument_version) == (
        instrument,
        score,
        version,
    )


INSTRUMENTS_REFUSED = [
    ("SLEDAI-2K", 7.5, "whole number"),
    ("SELENA-SLEDAI", 106, "105"),
    ("PGA", 3.1, "0..3"),
    ("PGA", -0.1, "greater than or equal"),
    ("BILAG", 3, "SELENA-SLEDAI"),
]


@pytest.mark.parametrize(("instrument", "score", "words"), INSTRUMENTS_REFUSED)
def test_a_score_outside_its_instrument_breaks_the_contract(instrument: str, score: float, words: str) -> None:
    error = _refused("DiseaseActivityScored", {"instrument": instrument, "score": score})
    assert error.field.startswith("payload")
    assert words in str(error)


def test_only_sledai_2k_is_kept_as_a_sledai_2k() -> None:
    state = ParticipantState("P-0001")
    for payload in ({"instrument": "PGA", "score": 0.4}, {"instrument": "SELENA-SLEDAI", "score": 3}):
        state = fold(state, _parse("DiseaseActivityScored", payload))
    assert state.sledai == ()
    state = fold(state, _parse("DiseaseActivityScored", {"instrument": "SLEDAI-2K", "score": 9}))
    assert [e.payload.score for e in state.sledai] == [9]


BILAG_DOMAINS = (
    "constitutional",
    "mucocutaneous",
    "neuropsychiatric",
    "musculoskeletal",
    "cardiorespiratory",
    "gastrointestinal",
    "ophthalmic",
    "renal",
    "haematological",
)


def _bilag(**grades: str) -> dict[str, Any]:
    return {"version": "BILAG-2004", **dict.fromkeys(BILAG_DOMAINS, "D"), **grades}


def test_a_bilag_2004_assessment_grades_its_nine_domains_and_is_kept_for_screening() -> None:
    event = _parse("BilagAssessed", _bilag(renal="A", mucocutaneous="B"))
    state = fold(ParticipantState("P-0001"), event)
    assert [e.payload.renal for e in state.bilag] == ["A"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (_bilag(renal="F"), "payload.renal"),
        ({k: v for k, v in _bilag().items() if k != "ophthalmic"}, "payload.ophthalmic"),
        (_bilag(version="BILAG-2000"), "payload.version"),
        ({**_bilag(), "cns": "A"}, "payload.cns"),
    ],
    ids=["grade F", "a domain missing", "another version", "an unknown domain"],
)
def test_a_bilag_that_cannot_be_right_breaks_the_contract(payload: dict[str, Any], field: str) -> None:
    assert _refused("BilagAssessed", payload).field == field


# --- medications and treatments with dose, unit and ATC class -----------------------------------

MEDICATION = {"drug_class": "glucocorticoid", "agent": "prednisone", "start": "2025-10-01"}


@pytest.mark.parametrize(
    "extra",
    [
        {"dose": 60.0, "dose_unit": "mg/d"},
        {"dose": 1.0, "dose_unit": "mg/kg/d", "atc_code": "H02AB07"},
        {"atc_code": "H02"},
        {"atc_code": "H"},
    ],
)
def test_a_medication_carries_dose_unit_and_atc_code(extra: dict[str, Any]) -> None:
    event = _parse("ConcomitantMedicationRecorded", {**MEDICATION, **extra})
    payload = event.payload.model_dump()
    assert {k: payload[k] for k in extra} == extra


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"dose": 60.0}, "payload"),
        ({"dose_unit": "mg"}, "payload"),
        ({"dose": 0, "dose_unit": "mg"}, "payload.dose"),
        ({"atc_code": "h02ab07"}, "payload.atc_code"),
        ({"atc_code": "H2"}, "payload.atc_code"),
    ],
    ids=["dose without unit", "unit without dose", "zero dose", "lower-case ATC", "ATC cut mid-level"],
)
def test_a_dose_or_class_that_cannot_be_right_breaks_the_contract(extra: dict[str, Any], field: str) -> None:
    assert _refused("ConcomitantMedicationRecorded", {**MEDICATION, **extra}).field == field


def test_a_prior_treatment_carries_a_dose_too() -> None:
    history = json.loads(next(line for line in example_lines() if b"MedicalHistoryRecorded" in line))["payload"]
    history["immunosuppressants"][0].update(dose=1.0, dose_unit="mg/kg/d", atc_code="H02AB06")
    event = _parse("MedicalHistoryRecorded", history)
    assert event.payload.immunosuppressants[0].dose_unit == "mg/kg/d"


@pytest.mark.parametrize(
    ("drug_class", "atc_code", "is_csf"),
    [
        ("G-CSF", None, True),
        ("GM-CSF", None, True),
        ("pegylated G-CSF", None, True),
        ("growth factor", "L03AA13", True),  # pegfilgrastim, classed by the site as something else
        ("growth factor", "L03AB", False),  # interferons
        ("glucocorticoid", None, False),
    ],
)
def test_any_colony_stimulating_factor_by_class_or_atc(drug_class: str, atc_code: str | None, is_csf: bool) -> None:
    med = ConcomitantMedication(drug_class=drug_class, agent="x", start=dt_date(), atc_code=atc_code)
    assert is_colony_stimulating_factor(med) is is_csf
    state = fold(ParticipantState("P-0001"), _parse("ConcomitantMedicationRecorded", med.model_dump(mode="json")))
    assert len(state.csf) == int(is_csf)
    assert len(state.gcsf) == int(drug_class == "G-CSF")  # NCT06904729 reads exactly its class, as before


def dt_date() -> Any:
    import datetime as dt

    return dt.date(2025, 10, 1)


# --- adverse events with GVHD -------------------------------------------------------------------

AE = {"term": "GVHD", "ctcae_grade": 3, "serious": True}


@pytest.mark.parametrize(
    "extra", [{"gvhd_acute_grade": 1}, {"gvhd_acute_grade": 4}, {"gvhd_chronic_severity": "moderate"}]
)
def test_an_adverse_event_carries_acute_and_chronic_gvhd(extra: dict[str, Any]) -> None:
    payload = _parse("AdverseEventReported", {**AE, **extra}).payload.model_dump()
    assert {k: payload[k] for k in extra} == extra


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"gvhd_acute_grade": 0}, "payload.gvhd_acute_grade"),
        ({"gvhd_acute_grade": 5}, "payload.gvhd_acute_grade"),
        ({"gvhd_chronic_severity": "grade 2"}, "payload.gvhd_chronic_severity"),
    ],
)
def test_a_gvhd_grade_outside_its_scale_breaks_the_contract(extra: dict[str, Any], field: str) -> None:
    assert _refused("AdverseEventReported", {**AE, **extra}).field == field


# --- coded assessments in the unit table --------------------------------------------------------


@pytest.mark.parametrize(
    ("loinc", "value", "unit"),
    [("10230-1", 55, "%"), ("18043-0", 62.5, "%"), ("59408-5", 97, "%"), ("2106-3", "negative", None)],
)
def test_lvef_spo2_and_pregnancy_test_are_coded_results(loinc: str, value: Any, unit: str | None) -> None:
    event = _parse("ScreeningLabResulted", {"loinc": loinc, "value": value, "unit": unit})
    assert event.payload.loinc == loinc


@pytest.mark.parametrize(
    ("loinc", "value", "unit", "words"),
    [
        ("10230-1", 55, "mL", "expected one of: %"),
        ("10230-1", "positive", None, "lvef"),
        ("2118-8", 5, "[IU]/L", "hcg"),
    ],
)
def test_a_coded_result_in_a_unit_it_cannot_have_breaks_the_contract(
    loinc: str, value: Any, unit: str | None, words: str
) -> None:
    error = _refused("ScreeningLabResulted", {"loinc": loinc, "value": value, "unit": unit})
    assert words in str(error)


# --- arms the protocol declares -----------------------------------------------------------------


def test_an_enrollment_in_an_arm_the_protocol_does_not_declare_is_refused_and_changes_nothing() -> None:
    replay = Replay(versions_for("NCT06904729"))
    enrolled = parse_event(json.dumps(event_dict("ParticipantEnrolled", {"arm": "cht101"})))
    with pytest.raises(ContractError) as caught:
        replay.feed(enrolled)
    assert caught.value.violations[0].kind == "unknown_arm"
    assert "low_dose, high_dose" in str(caught.value)
    assert replay.states == {}
    replay.feed(parse_event(json.dumps(event_dict("ParticipantEnrolled", {"arm": "low_dose"}))))
    assert replay.states["P-0001"].enrollment is not None


@pytest.mark.parametrize(
    ("arm", "total_cells", "weight_kg", "ratio"),
    [
        (Arm("low", 5e5, ""), 1.375e7, 27.5, 1.0),
        (Arm("flat", None, "", target_total_cells=3e8), 3.3e8, 80.0, 1.1),
        (Arm("unknown", None, ""), 3e8, 80.0, None),
    ],
)
def test_a_dose_is_per_kg_fixed_or_unknown(arm: Arm, total_cells: float, weight_kg: float, ratio: float) -> None:
    got = arm.dose_ratio(total_cells, weight_kg)
    assert got == ratio if ratio is None else round(got or 0, 9) == ratio


def test_an_arm_cannot_have_two_targets() -> None:
    with pytest.raises(ValueError, match="per kg or fixed"):
        Arm("both", 5e5, "", target_total_cells=3e8)


# --- snapshots keep the new screening records ---------------------------------------------------


def test_a_snapshot_keeps_csf_exposures_and_bilag_and_a_v4_snapshot_upcasts() -> None:
    state = fold(ParticipantState("P-0001"), _parse("BilagAssessed", _bilag(renal="A")))
    gcsf = {"drug_class": "G-CSF", "agent": "filgrastim", "start": "2025-10-01"}
    state = fold(state, _parse("ConcomitantMedicationRecorded", gcsf))
    assert decode(encode(state)) == state
    v4 = json.loads(encode(state))
    v4.update(snapshot_version=4, bilag=None, csf=None)
    del v4["bilag"], v4["csf"]
    restored = decode(json.dumps(v4).encode())
    assert restored.csf == state.gcsf
    assert restored.bilag == ()
