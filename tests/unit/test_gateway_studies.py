"""One gateway feeding two studies: each result goes to its participant's study, and a source may
send only for the studies it is registered for. As attacks: a lab of study A (or an insider holding
its key) writing into a participant of study B, by contract JSON or FHIR, is refused (422 naming the
field) and nothing of the request is published."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.metrics import GatewayMetrics
from services.gateway.publisher import KafkaPublisher
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceError, SourceStore
from services.kafka import KafkaSettings
from tests.builders import event_dict
from tests.unit.test_gateway_fhir import SYSTEM, observation
from tests.unit.test_gateway_json import FakePublisher

A, B = "NCT06904729", "NCT06946485"
SITE = "SITE01"
REGISTRATION = {"birth_date": "2014-01-01", "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}
LAB = {"loinc": "751-8", "value": 0.2, "unit": "10*9/L", "uln": None}


def _registry(study: str, *participants: str) -> ParticipantRegistry:
    registry = ParticipantRegistry()
    for pid in participants:
        registered = event_dict("ParticipantRegistered", REGISTRATION, participant=pid, study=study, site=SITE)
        registry.note_record(json.dumps(registered).encode())
    return registry


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, FakePublisher, dict[str, str]]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", A, "unit"), tmp_path, "127.0.0.1", 0, studies=(A, B))
    sources = SourceStore(settings.sources_path)
    keys = {
        name: sources.add(name, SITE, studies=studies)[1]
        for name, studies in (("lab.a", (A,)), ("lab.b", (B,)), ("lab.ab", (A, B)))
    }
    registries = {A: _registry(A, "P-A", "P-BOTH"), B: _registry(B, "P-B", "P-BOTH")}
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registries=registries)
    return TestClient(app), publisher, keys


def _post(client: TestClient, key: str, events: list[dict[str, Any]]) -> Any:
    return client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {key}"})


def _fhir(client: TestClient, key: str, participant: str) -> Any:
    body = observation(subject={"identifier": {"system": SYSTEM, "value": participant}})
    return client.post("/fhir/Observation", json=body, headers={"Authorization": f"Bearer {key}"})


def _lab(participant: str, study: str) -> dict[str, Any]:
    return event_dict("ScreeningLabResulted", LAB, participant=participant, study=study, site=SITE)


def test_a_source_of_study_a_naming_study_b_is_refused_on_study_id(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["lab.a"], [_lab("P-B", B)])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "study_id"
    assert "'lab.a' is not registered for that study" in problem["problem"]
    assert publisher.published == []


def test_a_source_of_study_a_writing_into_a_participant_of_b_under_a_is_refused(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["lab.a"], [_lab("P-B", A)])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert (problem["field"], problem["problem"]) == ("participant_id", f"'P-B' is not registered in {A}")
    assert publisher.published == []


def test_one_refused_event_keeps_the_whole_request_out(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["lab.a"], [_lab("P-A", A), _lab("P-B", B)])
    assert response.status_code == 422
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(1, "study_id")]
    assert publisher.published == []


def test_a_study_the_gateway_does_not_feed_is_refused(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["lab.ab"], [_lab("P-A", "NCT00000000")])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "study_id"
    assert f"this gateway feeds '{A}', '{B}'" in problem["problem"]
    assert publisher.published == []


def test_a_source_of_both_studies_publishes_each_event_under_its_own_study(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["lab.ab"], [_lab("P-A", A), _lab("P-B", B)])
    assert response.status_code == 202, response.text
    (published,) = publisher.published
    assert [(e.participant_id, e.study_id) for e in published] == [("P-A", A), ("P-B", B)]


def test_a_fhir_result_goes_to_its_participants_study(gateway: Any) -> None:
    client, publisher, keys = gateway
    assert _fhir(client, keys["lab.ab"], "P-B").status_code == 202
    assert _fhir(client, keys["lab.ab"], "P-A").status_code == 202
    assert _fhir(client, keys["lab.b"], "P-B").status_code == 202
    assert [[(e.participant_id, e.study_id) for e in request] for request in publisher.published] == [
        [("P-B", B)],
        [("P-A", A)],
        [("P-B", B)],
    ]


def test_a_fhir_result_of_a_participant_of_another_study_is_refused(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _fhir(client, keys["lab.a"], "P-B")
    assert response.status_code == 422
    text = json.dumps(response.json())
    assert "participant_id" in text
    assert f"'P-B' is not registered in a study of source 'lab.a' ({A})" in text
    assert B not in text  # the source learns nothing of a study it does not send for
    assert publisher.published == []


def test_a_fhir_result_of_a_participant_registered_in_both_studies_of_the_source_is_refused(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _fhir(client, keys["lab.ab"], "P-BOTH")
    assert response.status_code == 422
    assert "registered in several studies of this source" in json.dumps(response.json())
    assert publisher.published == []
    # A source of one of them is unambiguous: the participant's record in that study.
    assert _fhir(client, keys["lab.b"], "P-BOTH").status_code == 202
    assert [e.study_id for e in publisher.published[0]] == [B]


def test_the_publisher_writes_each_study_to_its_own_topic(tmp_path: Path) -> None:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", A, "ns"), tmp_path, studies=(A, B))
    publisher = KafkaPublisher(settings, GatewayMetrics())
    assert publisher.topics == {A: f"ns.{A}.participant-events", B: f"ns.{B}.participant-events"}
    assert settings.transactional_id.startswith(f"ns.{A}.gateway.")  # as a one-study gateway's


def test_a_source_needs_a_study_it_can_name(tmp_path: Path) -> None:
    store = SourceStore(tmp_path / "sources.sqlite3")
    with pytest.raises(SourceError, match="at least one study"):
        store.add("lab.none", SITE, studies=())
    with pytest.raises(SourceError, match="--study 'A B'"):
        store.add("lab.space", SITE, studies=("A B",))
    source, _ = store.add("lab.two", SITE, studies=(B, A, B))
    assert source.studies == (B, A)
    assert store.get("lab.two") == source


def test_a_source_added_before_studies_sends_for_the_first_study(tmp_path: Path) -> None:
    path = tmp_path / "sources.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE sources (name TEXT PRIMARY KEY, site TEXT NOT NULL, hl7_application TEXT, "
            "hl7_facility TEXT, key_sha256 TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL)"
        )
        old.execute("INSERT INTO sources VALUES ('lab.old', 'SITE01', NULL, NULL, 'digest', '2025-01-01')")
    old_source = SourceStore(path).get("lab.old")
    assert old_source is not None
    assert old_source.studies == (A,)
