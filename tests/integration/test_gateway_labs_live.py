"""Labs through the gateway on the real broker: FHIR R4 Observations (every screening analyte, a
Bundle with a bad entry, a result that implies a deviation, corrections that supersede it and
raise it again, as replay does) and HL7 v2 ORU^R01 over MLLP, sent with python-hl7's
``mllp_send`` (a client nobody here wrote): AA and events land, AE for a malformed message, and a
resent message publishes nothing new."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from contracts import encode, parse_event
from events.replay import Replay
from protocol.registry import versions_for
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.builders import example_lines
from tests.integration.conftest import ServiceProcess
from tests.integration.kafka_support import findings, wait_for, wait_until_consumed
from tests.integration.test_gateway_live import GatewayProcess, _published
from tests.unit.test_gateway_fhir import ANALYTE_CASES, SYSTEM, bundle, observation, quantity

pytestmark = pytest.mark.integration

MLLP_SEND = str(Path(sys.executable).with_name("mllp_send"))


def _call(gateway: GatewayProcess, path: str, body: bytes, key: str, content_type: str) -> tuple[int, Any]:
    request = urllib.request.Request(
        gateway.url + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def lab_gateway(settings: KafkaSettings, tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    """A gateway whose source lis.gz01 (site GZ-01) also sends HL7 v2 as LABSYS at GZ01LAB."""
    _, key = SourceStore(tmp_path / "gateway" / "sources.sqlite3").add(
        "lis.gz01", "GZ-01", "LABSYS", "GZ01LAB", mllp_allow=["127.0.0.1"]
    )
    process = GatewayProcess(settings, tmp_path / "gateway", tmp_path / "gateway.log").start()
    yield process, key
    assert process.stop() == 0, process.log()[-3000:]


def _of(participant: str, lines: list[bytes]) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, lines) if e["participant_id"] == participant]


def _ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"\n".join(json.dumps(e).encode() for e in events)


async def _mllp_send(port: int, message: str, tmp_path: Path) -> str:
    path = tmp_path / "message.hl7"
    path.write_bytes(b"\x0b" + message.encode() + b"\r\x1c\r")
    process = await asyncio.create_subprocess_exec(
        MLLP_SEND,
        "--port",
        str(port),
        "--file",
        str(path),
        "127.0.0.1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err
    return out.decode().strip("\x0b\x1c\r\n")


def _oru(participant: str, control_id: str, unit: str = "10*3/uL^10*3/uL^UCUM") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|LABSYS|GZ01LAB|TRIALGUARD|NCT06904729|20251101103000+0800||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
            f"PID|1||{participant}^^^NCT06904729^RI",
            "OBR|1|ORD9|FIL-9|SCREEN^Screening panel^L|||20251101080000+0800",
            f"OBX|1|NM|751-8^Neutrophils^LN||2.4|{unit}|1.5-7.5||||F",
            "OBX|2|ST|5196-1^HBsAg^LN||Negative||||||F",
        ]
    )


async def test_labs_in_fhir_and_hl7_reach_the_log_and_the_rules(
    settings: KafkaSettings,
    lab_gateway: tuple[GatewayProcess, str],
    rules_service: Callable[[], ServiceProcess],
    tmp_path: Path,
) -> None:
    gateway, key = lab_gateway
    lines = example_lines()
    e01 = _of("E-01", lines)
    enrollment = next(i for i, e in enumerate(e01) if e["event_type"] == "ParticipantEnrolled")
    alt = next(
        e for e in e01[:enrollment] if e["event_type"] == "ScreeningLabResulted" and e["payload"]["loinc"] == "1742-6"
    )
    before = [e for e in e01[:enrollment] if e is not alt]
    registration_e02 = _of("E-02", lines)[0]
    status, _ = _call(gateway, "/v1/events", _ndjson([*before, registration_e02]), key, "application/x-ndjson")
    assert status == 202

    # E-01's ALT arrives from the lab in FHIR at 4×ULN: enrolled so, that is ELIG-IN09.
    high_alt = observation(
        "1742-6",
        quantity(160, "U/L"),
        referenceRange=[{"high": {"value": 40}}],
        effectiveDateTime=alt["occurred_at"],
        issued=alt["recorded_at"],
        subject={"identifier": {"system": SYSTEM, "value": "E-01"}},
    )
    status, outcome = _call(gateway, "/fhir/Observation", json.dumps(high_alt).encode(), key, "application/fhir+json")
    assert (status, outcome["resourceType"]) == (202, "OperationOutcome"), outcome
    status, _ = _call(gateway, "/v1/events", _ndjson(e01[enrollment:]), key, "application/x-ndjson")
    assert status == 202

    # Every screening analyte, in one Bundle for E-02: each lands with its LOINC, value, unit and ULN.
    entries = []
    for n, (loinc, value, _, _, high) in enumerate(ANALYTE_CASES):
        extra = {"referenceRange": [{"high": {"value": high}}]} if high is not None else {}
        entries.append(
            observation(
                loinc,
                value,
                id=f"obs-{n}",
                identifier=[{"system": "urn:lab", "value": f"B-{n}"}],
                subject={"identifier": {"system": SYSTEM, "value": "E-02"}},
                **extra,
            )
        )
    bad = [*entries[:1], observation("1742-6", quantity(32, "mg/dL")), *entries[1:2]]
    count = len(await _published(settings))
    status, outcome = _call(gateway, "/fhir", json.dumps(bundle(*bad)).encode(), key, "application/fhir+json")
    assert status == 422
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[1].resource.valueQuantity.code"]
    assert len(await _published(settings)) == count, "a Bundle with a bad entry published something"
    status, outcome = _call(gateway, "/fhir", json.dumps(bundle(*entries)).encode(), key, "application/fhir+json")
    assert status == 202, outcome
    await wait_for(lambda: _at_least(settings, count + len(entries)), "the Bundle's events on participant-events")
    labs = [
        e
        for _, e in await _published(settings)
        if e["participant_id"] == "E-02" and e["event_type"] == "ScreeningLabResulted"
    ]
    got = [
        (e["payload"]["loinc"], e["payload"]["value"], e["payload"].get("unit"), e["payload"].get("uln")) for e in labs
    ]
    assert got == [
        (loinc, value, unit, high if high is None else float(high)) for loinc, _, value, unit, high in ANALYTE_CASES
    ]

    # HL7 v2 over MLLP: AA, the events land; the same message again: AA and nothing new.
    mllp_port = gateway.mllp_port
    answer = await _mllp_send(mllp_port, _oru("E-02", "MSG-1"), tmp_path)
    assert "MSA|AA|MSG-1" in answer, answer
    await wait_for(lambda: _at_least(settings, count + len(entries) + 2), "the ORU^R01's two results")
    before_resend = len(await _published(settings))
    answer = await _mllp_send(mllp_port, _oru("E-02", "MSG-2"), tmp_path)
    assert "MSA|AA|MSG-2" in answer, answer
    assert len(await _published(settings)) == before_resend, "a resent message published again"
    answer = await _mllp_send(mllp_port, _oru("E-02", "MSG-3", unit="mg/dL^^UCUM"), tmp_path)
    assert "MSA|AE|MSG-3" in answer
    assert "ERR||OBX^1^6" in answer, answer
    assert len(await _published(settings)) == before_resend

    service = rules_service()

    async def raised() -> bool:
        service.check_alive()
        return ("E-01", "ELIG-IN09") in {(f["participant_id"], f["rule_id"]) for f in await findings(settings)}

    await wait_for(raised, "ELIG-IN09 for E-01's ALT at 4×ULN, sent in FHIR")

    # The lab corrects the ALT to 2×ULN: the deviation no longer holds and is superseded...
    corrected = high_alt | {"status": "corrected", "valueQuantity": quantity(80, "U/L")["valueQuantity"]}
    status, outcome = _call(gateway, "/fhir/Observation", json.dumps(corrected).encode(), key, "application/fhir+json")
    assert status == 202, outcome
    await wait_for(lambda: _has(settings, service, "FindingSuperseded", 1), "FindingSuperseded for ELIG-IN09")
    # ... and corrects it back to 4×ULN: ELIG-IN09 holds again, raised with an id of the correction.
    status, outcome = _call(
        gateway,
        "/fhir/Observation",
        json.dumps(high_alt | {"status": "corrected"}).encode(),
        key,
        "application/fhir+json",
    )
    assert status == 202, outcome
    await wait_for(lambda: _has(settings, service, "DeviationRaised", 2, "ELIG-IN09"), "ELIG-IN09 raised again")
    await wait_until_consumed(settings, service.check_alive)

    live = [f for f in await findings(settings) if f["participant_id"] == "E-01"]
    kinds = [(f["event_type"], f["rule_id"]) for f in live]
    assert kinds == [
        ("DeviationRaised", "ELIG-IN09"),
        ("FindingSuperseded", "ELIG-IN09"),
        ("DeviationRaised", "ELIG-IN09"),
    ]
    assert live[1]["finding_id"] == live[0]["deviation_id"]
    assert live[2]["deviation_id"] != live[0]["deviation_id"]
    replay = Replay(versions_for("NCT06904729"))
    events = [parse_event(json.dumps(e)) for _, e in await _published(settings) if e["participant_id"] == "E-01"]
    assert [json.loads(encode(f)) for e in events for f in replay.feed(e)] == live, "live and replay differ"


async def _has(
    settings: KafkaSettings, service: ServiceProcess, kind: str, count: int, rule: str = "ELIG-IN09"
) -> bool:
    service.check_alive()
    found = [f for f in await findings(settings) if f["event_type"] == kind and f["rule_id"] == rule]
    return len(found) >= count


async def _at_least(settings: KafkaSettings, count: int) -> bool:
    return len(await _published(settings)) >= count
