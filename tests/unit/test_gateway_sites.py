"""A site's gateway key writes only into its own participants: what another site's lab system (or a
curious insider holding its key) would try, and the refusal — 422 naming the participant and both
sites, nothing of the request published."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway.app import create_app
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.builders import event_dict
from tests.unit.test_gateway_json import FakePublisher

VICTIM = "S3-00018"
SAE = {"term": "Pneumonia", "ctcae_grade": 3, "serious": True, "crs_grade": 3}
REGISTRATION = {"birth_date": "2014-01-01", "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}
LAB = {"loinc": "751-8", "value": 0.2, "unit": "10*9/L", "uln": None}


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, FakePublisher, dict[str, str]]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    keys = {site: sources.add(f"lis.{site.lower()}", site, None, None)[1] for site in ("GZ-01", "GZ-02")}
    registry = ParticipantRegistry()
    registry.note_record(json.dumps(event_dict("ParticipantRegistered", REGISTRATION, participant=VICTIM)).encode())
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registry=registry)
    return TestClient(app), publisher, keys


def _post(client: TestClient, key: str, events: list[dict[str, Any]]) -> Any:
    return client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {key}"})


def _from(site: str, event_type: str, payload: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return event_dict(event_type, payload, participant=VICTIM, site=site, **kwargs)


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [("AdverseEventReported", SAE), ("ScreeningLabResulted", LAB), ("ConsentWithdrawn", {"reason": "moved"})],
)
def test_another_sites_key_cannot_write_into_a_participant(gateway: Any, event_type: str, payload: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["GZ-02"], [_from("GZ-02", event_type, payload)])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "participant_id"
    assert all(name in problem["problem"] for name in (VICTIM, "'GZ-01'", "'GZ-02'"))
    assert publisher.published == []


def test_a_registration_in_the_same_request_does_not_re_home_the_participant(gateway: Any) -> None:
    client, publisher, keys = gateway
    attack = [_from("GZ-02", "ParticipantRegistered", REGISTRATION), _from("GZ-02", "ScreeningLabResulted", LAB)]
    response = _post(client, keys["GZ-02"], attack)
    assert response.status_code == 422
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [
        (0, "participant_id"),
        (1, "participant_id"),
    ]
    assert publisher.published == []


def test_naming_the_victims_site_in_the_event_is_refused_too(gateway: Any) -> None:
    client, publisher, keys = gateway
    response = _post(client, keys["GZ-02"], [_from("GZ-01", "AdverseEventReported", SAE)])
    assert response.status_code == 422
    assert {p["field"] for p in response.json()["problems"]} == {"site_id", "participant_id"}
    assert publisher.published == []


def test_the_home_sites_key_still_writes_and_registers_its_new_participants(gateway: Any) -> None:
    client, publisher, keys = gateway
    assert _post(client, keys["GZ-01"], [_from("GZ-01", "AdverseEventReported", SAE)]).status_code == 202
    newcomer = [
        event_dict("ParticipantRegistered", REGISTRATION, participant="S3-00099", site="GZ-02"),
        event_dict("ScreeningLabResulted", LAB, participant="S3-00099", site="GZ-02"),
    ]
    assert _post(client, keys["GZ-02"], newcomer).status_code == 202
    assert len(publisher.published) == 2
    # ...and from then on the newcomer is GZ-02's: GZ-01 cannot write into it either.
    response = _post(client, keys["GZ-01"], [event_dict("AdverseEventReported", SAE, participant="S3-00099")])
    assert response.status_code == 422
