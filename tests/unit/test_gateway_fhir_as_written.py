"""FHIR as labs write it: panels with results the study does not use (filtered, or refused for a
strict source), effective[x] in every form, date-only times in the source's zone, results without
``issued`` recorded at receipt, Bundles of every type a lab sends, DiagnosticReports with contained
or referenced results, participants found on the referenced Patient, and comparators."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from contracts.participant_events import LabResult
from services.gateway.fhir import SourceInfo, observations_to_events
from tests.unit.test_gateway_fhir import SOURCE, STRICT, SYSTEM, bundle, observation, quantity

SHANGHAI = SourceInfo(name="lab-site01", site="SITE01", time_zone="Asia/Shanghai")
RECEIVED = dt.datetime(2025, 3, 2, 1, 0, tzinfo=dt.UTC)


def run(payload: dict[str, Any], source: SourceInfo = SHANGHAI, **options: Any) -> Any:
    return observations_to_events(payload, source, "NCT06904729", SYSTEM, received_at=RECEIVED, **options)


def platelets() -> dict[str, Any]:
    return observation("777-3", quantity(250, "10*3/uL"))


# --- filter, don't refuse ----------------------------------------------------------------------


def test_a_cbc_publishes_the_studys_analytes_and_reports_the_rest_as_not_used() -> None:
    panel = bundle(observation("751-8"), platelets(), observation("718-7", quantity(11, "g/dL")))
    result = run(panel)
    assert result.http_status == 200
    assert [e.payload.loinc for e in result.events] == ["751-8", "718-7"]
    assert [(n.expression, n.diagnostics) for n in result.not_used] == [
        ("Bundle.entry[1].resource.code", "LOINC 777-3: not used by the study")
    ]
    issues = [(i.severity, i.diagnostics) for i in result.outcome().issue]
    assert ("information", "LOINC 777-3: not used by the study") in issues


def test_a_strict_source_has_the_whole_cbc_refused_naming_the_result_not_used() -> None:
    result = run(bundle(observation("751-8"), platelets()), STRICT)
    assert (result.events, result.http_status) == ((), 422)
    assert [p.expression for p in result.problems] == ["Bundle.entry[1].resource.code.coding"]


def test_a_bad_result_the_study_uses_still_refuses_the_whole_panel() -> None:
    result = run(bundle(platelets(), observation("751-8", quantity(1.8, "mg/dL"))))
    assert result.events == ()
    assert [p.expression for p in result.problems] == ["Bundle.entry[1].resource.valueQuantity.code"]


def test_a_result_not_used_is_not_checked_for_what_the_study_would_refuse() -> None:
    odd = observation("777-3", quantity(250, "furlongs"), status="cancelled", issued=None)
    result = run(bundle(observation("751-8"), odd))
    assert [e.payload.loinc for e in result.events] == ["751-8"]


# --- times -------------------------------------------------------------------------------------


def test_a_date_only_time_is_that_date_in_the_sources_zone() -> None:
    (event,) = run(observation(effectiveDateTime="2025-03-01")).events
    assert event.occurred_at.isoformat() == "2025-03-01T00:00:00+08:00"


def test_a_date_only_time_from_a_source_without_a_zone_is_refused_with_the_way_out() -> None:
    result = run(observation(effectiveDateTime="2025-03-01"), SOURCE)
    (problem,) = result.problems
    assert problem.expression == "Observation.effectiveDateTime"
    assert "sources set NAME --time-zone" in problem.diagnostics


@pytest.mark.parametrize("partial", ["2025", "2025-03"])
def test_a_year_or_month_alone_is_refused(partial: str) -> None:
    (problem,) = run(observation(effectiveDateTime=partial)).problems
    assert "only a year or a month" in problem.diagnostics


def test_effective_period_is_the_start_of_the_period() -> None:
    period = {"start": "2013-04-02T10:30:10+01:00", "end": "2013-04-05T10:30:10+01:00"}
    obs = {k: v for k, v in observation(effectivePeriod=period).items() if k != "effectiveDateTime"}
    (event,) = run(obs).events
    assert event.occurred_at.isoformat() == "2013-04-02T10:30:10+01:00"


def test_effective_instant_is_read() -> None:
    obs = {k: v for k, v in observation(effectiveInstant="2025-03-01T08:00:00.5+08:00").items()}
    del obs["effectiveDateTime"]
    (event,) = run(obs).events
    assert event.occurred_at.isoformat() == "2025-03-01T08:00:00.500000+08:00"


def test_no_effective_at_all_is_refused_naming_every_choice() -> None:
    obs = {k: v for k, v in observation().items() if k != "effectiveDateTime"}
    (problem,) = run(obs).problems
    assert problem.expression == "Observation.effective[x]"
    assert "effectivePeriod" in problem.diagnostics


def test_without_issued_the_result_is_recorded_at_receipt_and_says_so() -> None:
    obs = {k: v for k, v in observation().items() if k != "issued"}
    (event,) = run(obs).events
    assert event.recorded_at == RECEIVED
    assert event.source.recorded_at_from == "receipt"
    (with_issued,) = run(observation()).events
    assert with_issued.source.recorded_at_from is None


# --- bundles and reports -------------------------------------------------------------------------

PATIENT = {"resourceType": "Patient", "id": "pat1", "identifier": [{"system": SYSTEM, "value": "P-009"}]}


@pytest.mark.parametrize("kind", ["batch", "transaction", "collection", "message", "searchset"])
def test_every_bundle_type_labs_send_is_read_and_other_resources_are_noted(kind: str) -> None:
    header = {"resourceType": "MessageHeader", "id": "h"}
    result = run(bundle(header, observation("751-8"), kind=kind))
    assert [e.payload.loinc for e in result.events] == ["751-8"]
    assert [(n.expression, n.diagnostics) for n in result.notes] == [
        ("Bundle.entry[0].resource", "'MessageHeader' is not a result: ignored")
    ]


def _contained(loinc: str, value: dict[str, Any], ident: str) -> dict[str, Any]:
    return (
        {"resourceType": "Observation", "id": ident, "status": "final"}
        | {"code": {"coding": [{"system": "http://loinc.org", "code": loinc}]}}
        | value
    )


def test_a_diagnostic_report_lends_its_subject_and_times_to_its_contained_results() -> None:
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "58410-2"}]},
        "subject": {"identifier": {"system": SYSTEM, "value": "P-002"}},
        "effectiveDateTime": "2025-03-01T07:45:00+08:00",
        "issued": "2025-03-01T09:00:00+08:00",
        "contained": [
            _contained("751-8", quantity(2.1, "10*9/L"), "n"),
            _contained("777-3", quantity(200, "10*9/L"), "p"),
        ],
        "result": [{"reference": "#n"}, {"reference": "#p"}],
    }
    result = run(report)
    (event,) = result.events
    assert (event.participant_id, event.payload.value) == ("P-002", 2.1)
    assert event.occurred_at.isoformat() == "2025-03-01T07:45:00+08:00"
    assert event.recorded_at.isoformat() == "2025-03-01T09:00:00+08:00"
    assert [n.expression for n in result.not_used] == ["DiagnosticReport.contained[1].code"]


def test_a_report_in_a_bundle_reads_its_referenced_results_once_and_finds_the_patient() -> None:
    obs = {k: v for k, v in observation("751-8").items() if k not in ("subject", "effectiveDateTime")}
    report = {
        "resourceType": "DiagnosticReport",
        "status": "final",
        "code": {"text": "CBC"},
        "subject": {"reference": "urn:uuid:pat"},
        "effectiveDateTime": "2025-03-01",
        "result": [{"reference": "urn:uuid:obs"}],
    }
    payload = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:pat", "resource": PATIENT},
            {"fullUrl": "urn:uuid:rep", "resource": report},
            {"fullUrl": "urn:uuid:obs", "resource": obs},
        ],
    }
    (event,) = run(payload).events
    assert event.participant_id == "P-009"
    assert event.occurred_at.isoformat() == "2025-03-01T00:00:00+08:00"


def test_a_report_naming_a_result_it_did_not_send_is_refused() -> None:
    report = {"resourceType": "DiagnosticReport", "status": "final", "code": {"text": "CBC"}}
    result = run(report | {"result": [{"reference": "Observation/elsewhere"}]})
    (problem,) = result.problems
    assert problem.expression == "DiagnosticReport.result[0]"
    assert "send the Observations with it" in problem.diagnostics


def test_a_subject_reference_finds_the_participant_only_when_the_deployment_says_so() -> None:
    obs = observation(subject={"reference": "Patient/P-003"})
    assert [p.expression for p in run(obs).problems] == ["Observation.subject"]
    (event,) = run(obs, patient_reference=True).events
    assert event.participant_id == "P-003"


def test_a_patient_without_the_studys_identifier_is_not_a_participant() -> None:
    stranger = PATIENT | {"identifier": [{"system": "urn:mrn", "value": "P-009"}]}
    obs = observation(subject={"reference": "Patient/pat1"})
    result = run(bundle(stranger, obs))
    assert [p.expression for p in result.problems] == ["Bundle.entry[1].resource.subject"]


# --- comparators -----------------------------------------------------------------------------------


def test_a_result_below_a_limit_is_never_published_as_the_limit_itself() -> None:
    obs = observation(
        "11011-4",
        {"valueQuantity": {"value": 15, "comparator": "<", "system": "http://unitsofmeasure.org", "code": "[IU]/mL"}},
    )
    result = run(obs)
    if "comparator" in LabResult.model_fields:  # the contract carries it: published with it
        (event,) = result.events
        assert (event.payload.value, getattr(event.payload, "comparator", None)) == (15.0, "<")
    else:
        assert result.events == ()
        assert [p.expression for p in result.problems] == ["Observation.valueQuantity.comparator"]
