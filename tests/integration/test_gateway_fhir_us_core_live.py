"""Real US Core lab results over real HTTP to a real gateway process on the real broker: the CBC's
hemoglobin and leukocytes (date-only times, no ``issued``, ``subject`` ``Patient/example``) land on
participant-events with their value, unit, local date and a receipt time marked as such; its
platelets and MCV are answered as not used by the study, counted in /metrics, and never published."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.builders import event_dict
from tests.integration.kafka_support import wait_for
from tests.integration.test_gateway_labs_live import _call
from tests.integration.test_gateway_live import GatewayProcess, _get, _published

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parents[1] / "corpus" / "fhir"
FHIR = "application/fhir+json"


class PatientIdGateway(GatewayProcess):
    """A gateway that takes participant ids from ``subject.reference`` ``Patient/<id>``."""

    def options(self) -> list[str]:
        return [*super().options(), "--fhir-patient-reference"]


@pytest.fixture
def us_lab(settings: KafkaSettings, tmp_path: Path) -> Iterator[tuple[PatientIdGateway, str]]:
    """The source lis.us01 at GZ-01, reading date-only times in New York's zone."""
    store = SourceStore(tmp_path / "gateway" / "sources.sqlite3")
    _, key = store.add("lis.us01", "GZ-01", time_zone="America/New_York")
    process = PatientIdGateway(settings, tmp_path / "gateway", tmp_path / "gateway.log").start()
    yield process, key
    assert process.stop() == 0, process.log()[-3000:]


def _labs(records: list[tuple[bytes | None, dict[str, Any]]]) -> list[dict[str, Any]]:
    return [e for _, e in records if e["event_type"] == "ScreeningLabResulted" and e["participant_id"] == "example"]


async def test_a_real_us_core_cbc_publishes_the_studys_analytes_and_reports_the_rest(
    settings: KafkaSettings, us_lab: tuple[PatientIdGateway, str]
) -> None:
    gateway, key = us_lab
    registration = event_dict(
        "ParticipantRegistered",
        {"birth_date": "1990-01-01", "sex": "F", "height_cm": 160.0, "weight_kg": 60.0},
        participant="example",
    )
    status, _ = _call(gateway, "/v1/events", json.dumps(registration).encode(), key, "application/json")
    assert status == 202

    answers = {}
    for name in ("hemoglobin", "leukocytes", "platelets", "mcv"):
        body = (CORPUS / f"us-core.observation-cbc-{name}.json").read_bytes()
        answers[name] = _call(gateway, "/fhir/Observation", body, key, FHIR)
    assert [answers[n][0] for n in ("hemoglobin", "leukocytes", "platelets", "mcv")] == [202, 202, 200, 200]
    assert answers["platelets"][1]["issue"][1]["diagnostics"] == "LOINC 777-3: not used by the study"
    assert answers["mcv"][1]["issue"][1]["diagnostics"] == "LOINC 787-2: not used by the study"

    async def both_landed() -> bool:
        return len(_labs(await _published(settings))) >= 2

    await wait_for(both_landed, "the hemoglobin and leukocytes on participant-events")
    labs = _labs(await _published(settings))
    assert [(e["payload"]["loinc"], e["payload"]["value"], e["payload"]["unit"], e["occurred_at"]) for e in labs] == [
        ("718-7", 17.0, "g/dL", "2005-07-05T00:00:00-04:00"),
        ("6690-2", 10.0, "10*3/uL", "2005-07-05T00:00:00-04:00"),
    ]
    assert {(e["site_id"], e["source"]["system"], e["source"]["recorded_at_from"]) for e in labs} == {
        ("GZ-01", "lis.us01", "receipt")
    }
    metrics = _get(gateway.url + "/metrics")
    assert 'trialguard_gateway_results_not_used_total{format="fhir"} 2.0' in metrics
