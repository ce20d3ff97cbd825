"""Attacks on the FHIR endpoints with bodies that are not FHIR: every one answers 400 with an
OperationOutcome saying what is wrong, never 500, and nothing is published."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.operationoutcome import OperationOutcome

from contracts import ParticipantEvent
from services.gateway.app import create_app
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[list[ParticipantEvent]] = []

    async def publish(self, events: list[ParticipantEvent]) -> None:
        self.published.append(list(events))


def _nested(depth: int) -> bytes:
    return (
        json.dumps({"resourceType": "Observation", "note": [{"x": 1}]})
        .encode()
        .replace(b'{"x": 1}', b"[" * depth + b"1" + b"]" * depth)
    )


JUNK = {
    "text": (b"hello", "not JSON"),
    "array": (b"[]", "an array"),
    "null": (b"null", "null"),
    "number": (b"42", "a number"),
    "xml": (b'<Observation xmlns="http://hl7.org/fhir"><status value="final"/></Observation>', "not JSON"),
    "1000 deep arrays": (b"[" * 1000 + b"]" * 1000, "deeper than"),
    "1000 deep objects": (b'{"a":' * 1000 + b"1" + b"}" * 1000, "deeper than"),
    "deep inside a resource": (_nested(1000), "deeper than"),
    "latin-1 byte": (b'{"resourceType": "Observation", "id": "caf\xe9"}', "not UTF-8 (byte 42)"),
    "lone latin-1 byte": (b"\xe9", "not UTF-8 (byte 0)"),
    "truncated": (b'{"resourceType": "Observation"', "not JSON"),
}


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, FakePublisher, str]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    _, key = sources.add("lis.gz01", "GZ-01", "LIS", "GZ01")
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registry=ParticipantRegistry())
    return TestClient(app, raise_server_exceptions=False), publisher, key


@pytest.mark.parametrize("path", ["/fhir/Observation", "/fhir"])
@pytest.mark.parametrize("name", list(JUNK))
def test_a_body_that_is_not_fhir_answers_400_with_an_operation_outcome(
    gateway: tuple[TestClient, FakePublisher, str], path: str, name: str
) -> None:
    client, publisher, key = gateway
    body, words = JUNK[name]
    response = client.post(
        path, content=body, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"}
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate(response.json())
    assert outcome.issue[0].severity == "error"
    assert words in (outcome.issue[0].diagnostics or "")
    assert publisher.published == []


def test_a_byte_order_mark_is_no_reason_to_refuse(gateway: tuple[TestClient, FakePublisher, str]) -> None:
    client, _, key = gateway
    response = client.post(
        "/fhir/Observation",
        content=b"\xef\xbb\xbf" + json.dumps({"resourceType": "Observation"}).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"},
    )
    assert "not a FHIR resource" not in response.text
    OperationOutcome.model_validate(response.json())


def test_a_resource_nested_within_the_bound_is_judged_as_fhir_not_refused_as_deep(
    gateway: tuple[TestClient, FakePublisher, str],
) -> None:
    client, _, key = gateway
    response = client.post(
        "/fhir/Observation",
        content=_nested(40),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/fhir+json"},
    )
    assert response.status_code in (400, 422), response.text
    assert "deeper than" not in response.text
    OperationOutcome.model_validate(response.json())
