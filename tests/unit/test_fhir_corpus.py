"""The real-world FHIR corpus (tests/corpus/fhir, sources in its SOURCES.md): every file, unmodified,
is posted to the gateway app as a lab would post it, from a source configured as a deployment would
configure it (its time zone; participant ids as Patient ids), with each message's patient
registered at the source's site first. Each is accepted with the analyte, value, unit and times of
its manifest entry, the rest reported as not used, or refused with the reason the manifest gives."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome

from contracts.participant_events import ScreeningLabResulted
from services.gateway.app import create_app
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.unit.test_gateway_not_fhir import FakePublisher

CORPUS = Path(__file__).parents[1] / "corpus" / "fhir"
MANIFEST = json.loads((CORPUS / "manifest.json").read_text())
ENDPOINTS = {"Observation": "/fhir/Observation", "DiagnosticReport": "/fhir/DiagnosticReport", "Bundle": "/fhir"}


def _patients(body: bytes) -> set[str]:
    """The Patient ids a message names (``Patient/<id>``), as the gateway reads them."""
    text = body.decode("utf-8-sig")
    return {part.split('"')[0] for part in text.split('"Patient/')[1:]}


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, FakePublisher, str]:
    config = MANIFEST["source"]
    settings = GatewaySettings(
        KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"),
        tmp_path,
        "127.0.0.1",
        0,
        fhir_patient_reference=config["fhir_patient_reference"],
    )
    sources = SourceStore(settings.sources_path)
    _, key = sources.add("lis.corpus", config["site"], time_zone=config["time_zone"])
    registered = {
        pid: config["site"] for name in MANIFEST["messages"] for pid in _patients((CORPUS / name).read_bytes())
    }
    app = create_app(
        settings, sources=sources, publisher=(publisher := FakePublisher()), registry=ParticipantRegistry(registered)
    )
    return TestClient(app, raise_server_exceptions=False), publisher, key


def test_every_file_of_the_corpus_has_an_expected_outcome() -> None:
    assert sorted(MANIFEST["messages"]) == sorted(p.name for p in CORPUS.glob("*.json") if p.name != "manifest.json")


@pytest.mark.parametrize("name", sorted(MANIFEST["messages"]))
def test_a_real_message_gets_its_expected_outcome(gateway: tuple[TestClient, FakePublisher, str], name: str) -> None:
    client, publisher, key = gateway
    expected: dict[str, Any] = MANIFEST["messages"][name]
    body = (CORPUS / name).read_bytes()
    kind = json.loads(body)["resourceType"]
    before = dt.datetime.now(dt.UTC)
    response = client.post(
        ENDPOINTS[kind],
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"},
    )
    assert response.status_code == expected["status"], response.text
    outcome = OperationOutcome.model_validate(response.json())
    published = [e for batch in publisher.published for e in batch if isinstance(e, ScreeningLabResulted)]
    assert len(published) == sum(map(len, publisher.published))
    assert [
        (e.participant_id, e.payload.loinc, e.payload.value, e.payload.unit, e.occurred_at.isoformat())
        for e in published
    ] == [
        (p["participant"], p["loinc"], p["value"], p["unit"], p["occurred_at"]) for p in expected.get("published", [])
    ]
    for event, want in zip(published, expected.get("published", []), strict=True):
        if want["recorded_at"] == "receipt":
            assert event.source.recorded_at_from == "receipt"
            assert before <= event.recorded_at <= dt.datetime.now(dt.UTC)
        else:
            assert event.recorded_at.isoformat() == want["recorded_at"]
    information = [i.diagnostics for i in outcome.issue if i.severity == "information"]
    assert [d for d in information if d and "not used by the study" in d] == expected.get("not_used", [])
    if (refused := expected.get("refused")) is not None:
        error = next(i for i in outcome.issue if i.severity == "error")
        assert error.expression == [refused["expression"]]
        assert refused["reason"] in (error.diagnostics or "")
