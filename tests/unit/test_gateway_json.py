"""The gateway's contract-JSON endpoint in process, with a fake publisher: the three body shapes,
every violation listed by index or line, the site/source/registration rules, 401 and 413."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contracts import ParticipantEvent
from services.gateway.app import create_app
from services.gateway.publisher import PublishError
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceError, SourceStore
from services.kafka import KafkaSettings

EXAMPLE = Path(__file__).parents[2] / "examples" / "three-participants.jsonl"
LINES = EXAMPLE.read_bytes().splitlines()


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[list[ParticipantEvent]] = []
        self.fail = False

    async def publish(self, events: list[ParticipantEvent]) -> None:
        if self.fail:
            raise PublishError("the broker is away")
        self.published.append(list(events))


@pytest.fixture
def gateway(tmp_path: Path) -> tuple[TestClient, FakePublisher, str, SourceStore]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    _, key = sources.add("lis.gz01", "GZ-01", "LIS", "GZ01")
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registry=ParticipantRegistry())
    return TestClient(app), publisher, key, sources


def _event(line: int = 0, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(LINES[line])
    event.update(changes)
    return event


def _lab(**changes: Any) -> dict[str, Any]:
    return _event(next(i for i, b in enumerate(LINES) if b'"ScreeningLabResulted"' in b), **changes)


def _post(client: TestClient, key: str, body: Any, content_type: str = "application/json") -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        "/v1/events", content=data, headers={"Authorization": f"Bearer {key}", "Content-Type": content_type}
    )


def test_one_object_is_published_stamped_with_its_source(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    response = _post(client, key, _event(0))
    assert response.status_code == 202
    assert response.json() == {"event_ids": [_event(0)["event_id"]]}
    (published,) = publisher.published
    assert published[0].source.system == "lis.gz01"
    assert published[0].source.actor == "tech-03"


def test_an_array_publishes_all_events_in_order_and_resending_them_publishes_nothing(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    events = [json.loads(line) for line in LINES]
    assert _post(client, key, events).status_code == 202
    ndjson = b"\n".join(LINES) + b"\n\n"
    assert _post(client, key, ndjson, "application/x-ndjson").json()["event_ids"] == [e["event_id"] for e in events]
    (first,) = publisher.published
    assert [str(e.event_id) for e in first] == [e["event_id"] for e in events]


def test_ndjson_publishes_all_events_in_order(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    ndjson = b"\n".join(LINES) + b"\n\n"
    assert _post(client, key, ndjson, "application/x-ndjson").status_code == 202
    (first,) = publisher.published
    assert [str(e.event_id) for e in first] == [json.loads(line)["event_id"] for line in LINES]


def test_every_violation_of_every_event_is_listed_with_its_index_and_nothing_published(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    bad = _event(0, schema_version=2, occurred_at="2025-10-27T10:30:00")
    also_bad = _event(1, event_type="Nonsense")
    response = _post(client, key, [_event(0), bad, also_bad])
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert {(p["index"], p["field"]) for p in problems} == {
        (1, "schema_version"),
        (1, "occurred_at"),
        (2, "event_type"),
    }
    assert all(p["problem"] for p in problems)
    assert publisher.published == []


def test_ndjson_problems_are_named_by_line(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    body = LINES[0] + b"\n\n" + b'{"not": "an event"\n' + LINES[1]
    response = _post(client, key, body, "application/x-ndjson")
    assert response.status_code == 422
    assert {p["line"] for p in response.json()["problems"]} == {3}
    assert publisher.published == []


@pytest.mark.parametrize("body", [b"[1, ", b"[]", b"", b'"text"', b"[" + b"[" * 20 + b"]" * 21])
def test_bodies_that_are_no_events_are_422(gateway: Any, body: bytes) -> None:
    client, publisher, key, _ = gateway
    response = _post(client, key, body)
    assert response.status_code == 422, body
    assert response.json()["problems"]
    assert publisher.published == []


def test_a_site_other_than_the_sources_is_refused_naming_site_id(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    response = _post(client, key, [_event(0), _event(1, site_id="SH-02")])
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["index"] == 1
    assert problem["field"] == "site_id"
    assert "GZ-01" in problem["problem"]
    assert publisher.published == []


def test_another_study_and_clock_ticks_are_refused(gateway: Any) -> None:
    client, _, key, _ = gateway
    tick = _event(0, event_type="ClockTicked", payload={})
    response = _post(client, key, [_event(0, study_id="NCT00000000"), tick])
    assert [(p["index"], p["field"]) for p in response.json()["problems"]] == [(0, "study_id"), (1, "event_type")]


def test_a_lab_result_needs_a_registered_participant(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    response = _post(client, key, _lab())
    assert response.status_code == 422
    (problem,) = response.json()["problems"]
    assert problem["field"] == "participant_id"
    assert "'E-01'" in problem["problem"]
    # Registered in the same request (before it), or in an earlier one: accepted.
    assert _post(client, key, [_event(0), _lab()]).status_code == 202
    assert _post(client, key, _lab(event_id="00000000-0000-4000-8000-000000000001")).status_code == 202
    assert len(publisher.published) == 2


def test_a_lab_result_for_a_participant_of_another_site_is_refused(gateway: Any) -> None:
    client, _, key, _ = gateway
    client.app.state.registry.note_record(json.dumps(_event(0, participant_id="E-77", site_id="SH-02")).encode())
    response = _post(client, key, _lab(participant_id="E-77"))
    (problem,) = response.json()["problems"]
    assert problem["field"] == "participant_id"
    assert "SH-02" in problem["problem"]


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Basic abc", "Bearer " + "x" * 5000])
def test_requests_without_a_registered_key_are_401(gateway: Any, header: str | None) -> None:
    client, publisher, _, _ = gateway
    headers = {"Content-Type": "application/json"} | ({"Authorization": header} if header else {})
    response = client.post("/v1/events", content=json.dumps(_event(0)), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert publisher.published == []


def test_a_body_over_the_bound_is_413(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    huge = b"[" + b",".join([LINES[0]] * 3000) + b"]"
    assert len(huge) > 1024 * 1024
    assert _post(client, key, huge).status_code == 413

    def chunks() -> Any:  # no Content-Length: counted while read
        yield from [huge[i : i + 65536] for i in range(0, len(huge), 65536)]

    response = client.post("/v1/events", content=chunks(), headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 413
    assert publisher.published == []


def test_other_content_types_are_415_and_a_failed_publish_is_503(gateway: Any) -> None:
    client, publisher, key, _ = gateway
    assert _post(client, key, _event(0), "text/plain").status_code == 415
    publisher.fail = True
    assert _post(client, key, _event(0)).status_code == 503


def test_metrics_count_requests_and_rejections(gateway: Any) -> None:
    client, _, key, _ = gateway
    _post(client, key, _event(0))
    _post(client, key, _event(0, site_id="X-1"))
    client.post("/v1/events", content=b"{}")
    text = client.get("/metrics").text
    assert 'trialguard_gateway_requests_total{endpoint="/v1/events",status="202"} 1.0' in text
    assert 'trialguard_gateway_rejections_total{reason="site"} 1.0' in text
    assert 'trialguard_gateway_rejections_total{reason="unauthenticated"} 1.0' in text
    assert client.get("/health").json() == {"status": "ready"}


def test_sources_store_keys_hashed_and_hl7_lookup(gateway: Any) -> None:
    _, _, key, sources = gateway
    assert key.encode() not in sources.path.read_bytes()
    assert sources.path.stat().st_mode & 0o077 == 0
    assert sources.by_sending_application("LIS", "GZ01").name == "lis.gz01"
    assert sources.by_sending_application("LIS", "SH02") is None
    with pytest.raises(SourceError):
        sources.add("other", "GZ-01", "LIS", "GZ01")  # the HL7 pair is taken
    with pytest.raises(SourceError):
        sources.add("bad name", "GZ-01")
    with pytest.raises(SourceError):
        sources.add("half", "GZ-01", hl7_application="LIS")
