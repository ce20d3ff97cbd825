"""The lab gateway as a real process on the real broker: the example cohort POSTed as NDJSON lands
on participant-events exactly, keyed by participant, in one transaction; a request with one bad
event publishes nothing; the rules service raises the example's findings from what it published."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import parse_event
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings, read_to_end
from tests.builders import example_lines
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import findings, wait_for, wait_until_consumed
from tests.processes import HttpServiceProcess, free_port

pytestmark = pytest.mark.integration


class GatewayProcess(HttpServiceProcess):
    """``trialguard gateway serve`` as a child process, on free loopback ports (HTTP and MLLP)."""

    command = ("gateway", "serve")

    def __init__(self, settings: KafkaSettings, data_dir: Path, log_path: Path) -> None:
        super().__init__(settings, data_dir, log_path)
        self.mllp_port = free_port()

    def options(self) -> list[str]:
        return [*super().options(), "--mllp-port", str(self.mllp_port)]

    def post(self, body: bytes, key: str, content_type: str = "application/x-ndjson") -> tuple[int, Any]:
        request = urllib.request.Request(
            self.url + "/v1/events",
            data=body,
            headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def gateway(settings: KafkaSettings, tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    """A running gateway with one registered source, lis.gz01 at GZ-01 (the example's site)."""
    _, key = SourceStore(tmp_path / "gateway" / "sources.sqlite3").add("lis.gz01", "GZ-01")
    process = GatewayProcess(settings, tmp_path / "gateway", tmp_path / "gateway.log").start()
    yield process, key
    assert process.stop() == 0, process.log()[-3000:]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def _count_at_least(settings: KafkaSettings, count: int) -> bool:
    return len(await _published(settings)) >= count


async def _published(settings: KafkaSettings) -> list[tuple[bytes | None, dict[str, Any]]]:
    records = read_to_end(settings, settings.topics.participant_events)
    return [(r.key, json.loads(r.value or b"")) async for r in records]


async def test_the_example_posted_as_ndjson_is_published_exactly_and_judged(
    settings: KafkaSettings, gateway: tuple[GatewayProcess, str], rules_service: Callable[[], ServiceProcess]
) -> None:
    process, key = gateway
    lines = example_lines()
    status, body = process.post(b"\n".join(lines) + b"\n", key)
    assert status == 202, body
    sent = [json.loads(line) for line in lines]
    assert body == {"event_ids": [e["event_id"] for e in sent]}

    # The broker writes the commit markers just after it answers the commit: wait until they are.
    await wait_for(lambda: _count_at_least(settings, len(sent)), "the request's events to be readable")
    published = await _published(settings)
    assert sorted(e["event_id"] for _, e in published) == sorted(e["event_id"] for e in sent)
    for record_key, event in published:
        assert record_key == event["participant_id"].encode()
    # The example's source is lis.gz01 already: the events are the example's, field for field
    # (written out by contracts.encode, so omitted optional fields appear as null).
    by_id = {e["event_id"]: parse_event(json.dumps(e)) for _, e in published}
    for line, expected in zip(lines, sent, strict=True):
        assert by_id[expected["event_id"]] == parse_event(line)

    # One event of another site, one breaking the contract, one good: nothing published.
    good = dict(sent[6], event_id="00000000-0000-4000-8000-00000000000a")
    other_site = dict(sent[5], event_id="00000000-0000-4000-8000-00000000000b", site_id="SH-02")
    broken = dict(sent[5], event_id="00000000-0000-4000-8000-00000000000d", schema_version=9)
    status, body = process.post(json.dumps([good, other_site, broken]).encode(), key, "application/json")
    assert status == 422
    assert [(p["index"], p["field"]) for p in body["problems"]] == [(1, "site_id"), (2, "schema_version")]
    # A lab result for a participant never registered is refused, naming the participant.
    lab = next(e for e in sent if e["event_type"] == "ScreeningLabResulted")
    stranger = dict(lab, event_id="00000000-0000-4000-8000-00000000000c", participant_id="E-99")
    status, body = process.post(json.dumps(stranger).encode(), key, "application/json")
    assert status == 422
    assert body["problems"][0]["field"] == "participant_id"
    assert "E-99" in body["problems"][0]["problem"]
    assert len(await _published(settings)) == len(sent)

    service = rules_service()
    expected = {("E-02", "DOSE-01"), ("E-03", "CONSENT-01")}

    # The gateway's transaction ends in a commit marker after its records: consumed means no
    # record left, not no offset left (group_lag counts records).
    await wait_until_consumed(settings, service.check_alive)
    assert expected <= {(f["participant_id"], f["rule_id"]) for f in await findings(settings)}


async def test_registrations_already_on_the_topic_are_known_after_a_restart(
    settings: KafkaSettings, gateway: tuple[GatewayProcess, str]
) -> None:
    process, key = gateway
    lines = example_lines()
    registration = next(line for line in lines if b"ParticipantRegistered" in line)
    assert process.post(registration, key)[0] == 202
    process.stop()
    process.start()  # the registry reloads from participant-events
    lab = next(line for line in lines if b"ScreeningLabResulted" in line and b'"E-01"' in line)
    status, body = process.post(lab, key)
    assert status == 202, body
    metrics = await asyncio.to_thread(_get, process.url + "/metrics")
    assert "participants" not in metrics  # /metrics is open: how big the study is stays private
    assert "trialguard_gateway_publish_seconds_count 1.0" in metrics


async def test_another_sites_key_cannot_write_into_a_participant_live(
    settings: KafkaSettings, gateway: tuple[GatewayProcess, str], tmp_path: Path
) -> None:
    """The attack of the security review, against the real gateway: GZ-02's key writes an adverse
    event into GZ-01's participant, then tries to re-home it with a registration of its own."""
    process, key = gateway
    _, other_key = SourceStore(tmp_path / "gateway" / "sources.sqlite3").add("lis.gz02", "GZ-02")
    registration = next(line for line in example_lines() if b"ParticipantRegistered" in line)
    assert process.post(registration, key)[0] == 202
    victim = parse_event(registration).participant_id

    def at_gz02(line: bytes, **changes: Any) -> bytes:
        return json.dumps(json.loads(line) | {"site_id": "GZ-02", "participant_id": victim} | changes).encode()

    adverse_event = json.dumps(
        json.loads(registration)
        | {
            "event_id": "00000000-0000-4000-8000-0000000000ae",
            "event_type": "AdverseEventReported",
            "payload": {"term": "Cytokine release syndrome", "ctcae_grade": 3, "serious": True, "crs_grade": 3},
        }
    ).encode()
    status, body = process.post(at_gz02(adverse_event), other_key)
    assert status == 422, body
    (problem,) = body["problems"]
    assert problem["field"] == "participant_id"
    assert all(name in problem["problem"] for name in (victim, "'GZ-01'", "'GZ-02'"))

    lab = next(line for line in example_lines() if b"ScreeningLabResulted" in line)
    rehome = at_gz02(registration, event_id="00000000-0000-4000-8000-00000000000b")
    status, body = process.post(rehome + b"\n" + at_gz02(lab), other_key)
    assert status == 422, body
    assert [p["line"] for p in body["problems"]] == [1, 2]

    published = [
        parse_event(record.value or b"").event_id
        async for record in read_to_end(settings, settings.topics.participant_events)
    ]
    assert published == [parse_event(registration).event_id]
