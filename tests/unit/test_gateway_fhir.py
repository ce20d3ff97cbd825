"""FHIR R4 Observations → ScreeningLabResulted: every screening analyte, Bundles all or nothing,
held statuses, problems named by FHIRPath, idempotent event ids."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome

from contracts import units
from contracts.participant_events import LabResultCorrected, LabResultRetracted
from services.gateway.fhir import SourceInfo, observations_to_events

SOURCE = SourceInfo(name="lab-site01", site="SITE01")
SYSTEM = "urn:trialguard:participant"


def observation(loinc: str = "751-8", value: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    """A final Observation of participant P-001, numeric 1.8 10*3/uL unless told otherwise."""
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": f"obs-{loinc}",
        "identifier": [{"system": "urn:lab:result", "value": f"R-{loinc}"}],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
        "subject": {"identifier": {"system": SYSTEM, "value": "P-001"}},
        "effectiveDateTime": "2025-03-01T08:00:00+08:00",
        "issued": "2025-03-01T10:30:00+08:00",
    }
    obs |= value if value is not None else quantity(1.8, "10*3/uL")
    return obs | fields


def quantity(value: float, code: str | None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "system": "http://unitsofmeasure.org"}
    return {"valueQuantity": q | ({"code": code, "unit": code} if code else {})}


def bundle(*resources: dict[str, Any], kind: str = "batch") -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": [{"resource": r} for r in resources]}


def run(payload: dict[str, Any], source: SourceInfo = SOURCE) -> Any:
    return observations_to_events(payload, source, "NCT06904729", SYSTEM)


STRICT = SourceInfo(name="lab-site01", site="SITE01", strict=True)


SNOMED = "http://snomed.info/sct"
# (LOINC, value[x], expected value, expected unit, referenceRange[0].high or None)
ANALYTE_CASES = [
    ("731-0", quantity(1.2, "10*3/uL"), 1.2, "10*3/uL", 4.0),
    ("6690-2", quantity(5400, "/uL"), 5400.0, "/uL", 11000),
    ("751-8", quantity(1.8, "10*9/L"), 1.8, "10*9/L", 7.5),
    ("718-7", quantity(11.2, "g/dL"), 11.2, "g/dL", 15.5),
    ("59260-0", quantity(7.1, "mmol/L"), 7.1, "mmol/L", None),
    ("1742-6", quantity(32, "U/L"), 32.0, "U/L", 40),
    ("1920-8", quantity(28, "U/L"), 28.0, "U/L", 40),
    ("1975-2", quantity(0.6, "mg/dL"), 0.6, "mg/dL", 1.2),
    ("14631-6", quantity(10, "umol/L"), 10.0, "umol/L", 21),
    ("2160-0", quantity(0.5, "mg/dL"), 0.5, "mg/dL", 0.7),
    ("14682-9", quantity(44, "umol/L"), 44.0, "umol/L", 62),
    ("6301-6", quantity(1.1, "{INR}"), 1.1, "{INR}", 1.2),
    ("6301-6", quantity(1.0, None), 1.0, None, None),
    ("5902-2", quantity(12.5, "s"), 12.5, "s", 14),
    ("5048-4", {"valueString": "1:160"}, "1:160", None, None),
    ("5048-4", {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 320}}}, "1:320", None, None),
    ("5048-4", {"valueString": "Negative"}, "negative", None, None),
    ("8116-6", quantity(250, "/uL"), 250.0, "/uL", None),
    ("8116-6", {"valueString": "positive"}, "positive", None, None),
    ("8117-4", quantity(12.5, "%"), 12.5, "%", None),
    ("2890-2", quantity(1800, "mg/g{creat}"), 1800.0, "mg/g{creat}", 200),
    ("5196-1", {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "260385009"}]}}, "negative", None, None),
    ("16933-4", {"valueString": "negative"}, "negative", None, None),
    (
        "16128-1",
        {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "42425007"}]}},
        "equivocal",
        None,
        None,
    ),
    ("31201-7", {"valueCodeableConcept": {"text": "Negative"}}, "negative", None, None),
    ("24110-9", {"valueCodeableConcept": {"coding": [{"system": SNOMED, "code": "10828004"}]}}, "positive", None, None),
    ("42595-9", quantity(20, "[IU]/mL"), 20.0, "[IU]/mL", None),
    ("29615-2", {"valueString": "Not detected"}, "negative", None, None),
    ("11011-4", quantity(15, "[IU]/mL"), 15.0, "[IU]/mL", None),
    ("11259-9", {"valueString": "negative"}, "negative", None, None),
    # NCT06946485's: ejection fraction, oxygen saturation, a pregnancy test.
    ("10230-1", quantity(62, "%"), 62.0, "%", None),
    ("59408-5", quantity(97, "%"), 97.0, "%", None),
    ("2106-3", {"valueString": "Negative"}, "negative", None, None),
]


def test_the_table_covers_every_screening_analyte_of_the_unit_table() -> None:
    covered = {units.analyte_for(loinc) for loinc, *_ in ANALYTE_CASES}
    assert covered == set(units.ANALYTES)


@pytest.mark.parametrize(("loinc", "value", "expected", "unit", "high"), ANALYTE_CASES)
def test_each_analyte_maps_to_loinc_value_unit_and_uln(
    loinc: str, value: dict[str, Any], expected: float | str, unit: str | None, high: float | None
) -> None:
    ranges = {"referenceRange": [{"low": {"value": 0}, "high": {"value": high}}]} if high is not None else {}
    result = run(observation(loinc, value, **ranges))
    assert result.problems == ()
    assert result.http_status == 200
    (event,) = result.events
    assert (event.payload.loinc, event.payload.value, event.payload.unit) == (loinc, expected, unit)
    assert event.payload.uln == (float(high) if high is not None else None)
    assert (event.participant_id, event.site_id, event.source.system) == ("P-001", "SITE01", "lab-site01")
    assert event.occurred_at.isoformat() == "2025-03-01T08:00:00+08:00"
    assert event.recorded_at.isoformat() == "2025-03-01T10:30:00+08:00"


def test_a_bundle_with_one_bad_entry_publishes_nothing_and_names_the_entry() -> None:
    bad = observation("1742-6", quantity(32, "mg/dL"))
    result = run(bundle(observation("751-8"), observation("718-7", quantity(11, "g/dL")), bad, kind="transaction"))
    assert result.events == ()
    assert result.http_status == 422
    outcome = OperationOutcome.model_validate(result.outcome().model_dump())
    (issue,) = outcome.issue
    assert issue.severity == "error"
    assert issue.expression == ["Bundle.entry[2].resource.valueQuantity.code"]
    assert "'mg/dL' is not known for alt" in (issue.diagnostics or "")


def test_a_good_bundle_publishes_every_entry() -> None:
    result = run(bundle(observation("751-8"), observation("718-7", quantity(11, "g/dL"))))
    assert [e.payload.loinc for e in result.events] == ["751-8", "718-7"]


@pytest.mark.parametrize("status", ["preliminary", "registered"])
def test_results_not_final_are_held_not_published(status: str) -> None:
    result = run(bundle(observation("751-8"), observation("718-7", quantity(11, "g/dL"), status=status)))
    assert [e.payload.loinc for e in result.events] == ["751-8"]
    assert [(h.expression, h.status) for h in result.held] == [("Bundle.entry[1].resource", status)]
    assert result.http_status == 200


def test_an_amended_result_is_published_under_an_id_of_its_own() -> None:
    (final,) = run(observation()).events
    (amended,) = run(observation(status="amended")).events
    assert final.event_id != amended.event_id


def test_a_corrected_observation_corrects_the_final_result_of_its_identifier() -> None:
    (final,) = run(observation("1742-6", quantity(160, "U/L"))).events
    (correction,) = run(observation("1742-6", quantity(80, "U/L"), status="corrected")).events
    assert isinstance(correction, LabResultCorrected)
    assert correction.payload.corrected_event_id == final.event_id
    assert (correction.payload.value, correction.payload.unit) == (80.0, "U/L")
    (again,) = run(observation("1742-6", quantity(160, "U/L"), status="corrected")).events
    assert again.event_id != correction.event_id, "another value is another correction"


def test_an_observation_entered_in_error_retracts_the_final_result() -> None:
    (final,) = run(observation("1742-6", quantity(160, "U/L"))).events
    (retraction,) = run(observation("1742-6", quantity(160, "U/L"), status="entered-in-error")).events
    assert isinstance(retraction, LabResultRetracted)
    assert retraction.payload.retracted_event_id == final.event_id


@pytest.mark.parametrize(
    ("change", "expression", "words"),
    [
        (quantity(1.8, "10*3/L"), "Observation.valueQuantity.code", "'10*3/L' is not known"),
        (quantity(1.8, None), "Observation.valueQuantity.code", "no unit is given"),
        ({"subject": {"reference": "Patient/123"}}, "Observation.subject", SYSTEM),
        ({"subject": {"identifier": {"system": "urn:mrn", "value": "MRN9"}}}, "Observation.subject", SYSTEM),
        (
            {"subject": {"identifier": {"system": SYSTEM, "value": "Jane Doe"}}},
            "Observation.subject.identifier.value",
            "",
        ),
        ({"effectiveDateTime": "2025-03-01"}, "Observation.effectiveDateTime", "no time zone"),
        ({"issued": None}, "Observation.issued", "missing"),
        ({"valueString": "weakly reactive", "valueQuantity": None}, "Observation.valueString", "not a result"),
        ({"valueString": "1:160", "valueQuantity": None}, "Observation.valueString", "titre"),
        (
            {"referenceRange": [{"high": {"value": 7.5, "code": "/uL"}}]},
            "Observation.referenceRange[0].high.code",
            "/uL",
        ),
        ({"id": None, "identifier": None}, "Observation.identifier", "identifier or an id"),
        ({"status": "cancelled"}, "Observation.status", "no result"),
    ],
)
def test_semantic_problems_are_named_by_fhirpath(change: dict[str, Any], expression: str, words: str) -> None:
    obs = {k: v for k, v in (observation() | change).items() if v is not None}
    result = run(obs)
    assert result.events == ()
    assert result.http_status == 422
    assert expression in [p.expression for p in result.problems], result.problems
    assert any(words in p.diagnostics for p in result.problems if p.expression == expression)


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ({"coding": [{"system": "http://loinc.org", "code": "8124-0"}]}, "8124-0"),
        ({"coding": [{"system": "urn:local", "code": "NEUT"}]}, "no coding"),
    ],
)
def test_a_strict_source_has_a_result_the_study_does_not_use_refused(code: dict[str, Any], words: str) -> None:
    result = run(observation(code=code), STRICT)
    assert (result.events, result.http_status) == ((), 422)
    (problem,) = result.problems
    assert problem.expression == "Observation.code.coding"
    assert words in problem.diagnostics


@pytest.mark.parametrize(
    ("payload", "expression"),
    [
        ({"resourceType": "Patient"}, "resourceType"),
        (observation(effectiveDateTime="2025-03-01T08:00:00"), "Observation.effectiveDateTime"),
        (bundle(observation(), {**observation(), "valueQuantity": {"value": "many"}}), "Bundle.entry[1].resource"),
        ({"resourceType": "Bundle", "type": "batch", "entry": "x"}, "Bundle"),
    ],
)
def test_input_that_is_not_fhir_is_a_400(payload: dict[str, Any], expression: str) -> None:
    result = run(payload)
    assert result.http_status == 400
    assert result.events == ()
    assert any(p.expression.startswith(expression) for p in result.problems), result.problems


def test_bundles_that_are_not_lab_reports_are_refused() -> None:
    for kind in ("document", "history", "transaction-response"):
        assert [p.expression for p in run(bundle(observation(), kind=kind)).problems] == ["Bundle.type"]


def test_a_resent_request_gives_the_same_event_ids() -> None:
    payload = bundle(observation("751-8"), observation("718-7", quantity(11, "g/dL")))
    first = run(payload)
    again = run(copy.deepcopy(payload))
    assert [e.event_id for e in first.events] == [e.event_id for e in again.events]
    assert len({e.event_id for e in first.events}) == 2
    other = observations_to_events(payload, SourceInfo("lab-site02", "SITE02"), "NCT06904729", SYSTEM)
    assert {e.event_id for e in other.events}.isdisjoint(e.event_id for e in first.events)


def test_the_outcome_of_a_good_request_is_informational() -> None:
    outcome = run(bundle(observation(), observation("718-7", status="preliminary"))).outcome()
    assert [i.severity for i in outcome.issue] == ["information", "information"]
    assert outcome.issue[0].diagnostics == "1 result(s) accepted"
    assert outcome.issue[1].expression == ["Bundle.entry[1].resource"]
