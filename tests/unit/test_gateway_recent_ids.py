"""The gateway's memory of published event ids: bounded in count and in bytes, exact, and still
answering a resend without publishing it again."""

from __future__ import annotations

import json
import random
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.gateway import registry as registry_module
from services.gateway.app import create_app
from services.gateway.recent_ids import RecentIds
from services.gateway.registry import PUBLISHED_IDS_KEPT, ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.unit.test_gateway_json import LINES, FakePublisher

MIB = 2**20


def _ids(n: int, seed: int = 1) -> list[uuid.UUID]:
    rng = random.Random(seed)
    return [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(n)]


def test_the_latest_ids_are_remembered_and_the_oldest_generations_forgotten() -> None:
    ids = _ids(2_500)
    recent = RecentIds(kept=1_000, generation=100)
    for event_id in ids:
        recent.add(event_id)
        assert len(recent) <= 1_000
    assert 900 <= len(recent) <= 1_000
    assert all(event_id in recent for event_id in ids[-900:])
    assert not any(event_id in recent for event_id in ids[:1_400])


def test_an_id_sharing_half_its_bits_with_a_remembered_one_is_not_taken_for_a_resend() -> None:
    # A source that knows (or guesses) another's id must not get a new event of its own dropped,
    # nor make a real resend look new: all 128 bits count, sealed or not.
    recent = RecentIds(kept=1_000, generation=10)
    remembered = _ids(25, seed=2)
    for event_id in remembered:
        recent.add(event_id)
    for event_id in remembered:
        same_high = uuid.UUID(int=event_id.int ^ 1)
        same_low = uuid.UUID(int=event_id.int ^ (1 << 100))
        assert event_id in recent
        assert same_high not in recent
        assert same_low not in recent


def test_a_full_memory_of_the_gateways_bound_stays_within_6_mib() -> None:
    ids = _ids(PUBLISHED_IDS_KEPT + 50_000, seed=3)
    tracemalloc.start()
    try:
        recent = RecentIds(PUBLISHED_IDS_KEPT)
        for event_id in ids:
            recent.add(event_id)
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(recent) >= PUBLISHED_IDS_KEPT - 10_000
    assert used < 6 * MIB, f"{used / MIB:.1f} MiB for {len(recent):,} ids"
    assert ids[-1] in recent
    assert ids[0] not in recent


def test_the_memory_is_taken_at_the_start_so_that_filling_it_grows_nothing_but_one_generation() -> None:
    # A soak run read the sealed arrays filling (~3 MiB over the first 17 minutes) as a leak.
    ids = _ids(PUBLISHED_IDS_KEPT, seed=6)
    tracemalloc.start()
    try:
        recent = RecentIds(PUBLISHED_IDS_KEPT)
        empty, _ = tracemalloc.get_traced_memory()
        for event_id in ids:
            recent.add(event_id)
        full, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert empty >= 2.5 * MIB
    assert full - empty < 1.5 * MIB, f"{(full - empty) / MIB:.1f} MiB taken while filling"
    assert all(event_id in recent for event_id in ids[-1_000:])


def test_a_memory_of_one_generation_keeps_no_sealed_one() -> None:
    ids = _ids(250, seed=7)
    recent = RecentIds(kept=100, generation=100)
    for event_id in ids:
        recent.add(event_id)
    assert len(recent) == 50
    assert all(event_id in recent for event_id in ids[-50:])
    assert not any(event_id in recent for event_id in ids[:200])


def test_bounds_that_are_not_positive_are_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        RecentIds(kept=0)


def test_ids_read_from_the_log_are_remembered_whatever_their_case_and_malformed_ones_skipped() -> None:
    registry = ParticipantRegistry()
    event_id = uuid.uuid4()
    registry.note_record(json.dumps({"event_id": str(event_id).upper(), "event_type": "X"}).encode())
    registry.note_record(b'{"event_id": "------------------------------------", "event_type": "X"}')
    registry.note_record(b'{"event_id": 12, "event_type": "X"}')
    assert registry.published(event_id)
    assert registry.published(str(event_id))
    assert not registry.published("not an id")
    assert not registry.published(uuid.uuid4())


@pytest.fixture
def small_gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, FakePublisher, str, Any]:
    monkeypatch.setattr(registry_module, "PUBLISHED_IDS_KEPT", 200)
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    _, key = sources.add("lis.gz01", "GZ-01", "LIS", "GZ01")
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registry=ParticipantRegistry())
    return TestClient(app), publisher, key, app.state.registry


def _post(client: TestClient, key: str, event: dict[str, Any]) -> Any:
    return client.post("/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})


def test_a_resend_among_other_traffic_publishes_nothing_until_the_bound_forgets_it(small_gateway: Any) -> None:
    client, publisher, key, registry = small_gateway
    event = json.loads(LINES[0])
    assert _post(client, key, event).status_code == 202
    for other in _ids(150, seed=4):  # other traffic on participant-events, within the bound
        registry.note_record(json.dumps({"event_id": str(other)}).encode())
    assert _post(client, key, event).status_code == 202
    assert len(publisher.published) == 1, "a resend was published again"
    for other in _ids(400, seed=5):  # past the bound: the resend is forgotten, the log's consumers de-duplicate
        registry.note_record(json.dumps({"event_id": str(other)}).encode())
    assert _post(client, key, event).status_code == 202
    assert len(publisher.published) == 2
