"""A complete blood count over MLLP, as a hematology analyzer's LIS sends it, to a real gateway
process on a real broker, sent with python-hl7's ``mllp_send``: ACK AA listing each result the
study does not use, the study's analytes on participant-events with the lab's local times read in
its zone. And the public NIST LRI CBC of the corpus, sent byte for byte (byte-order mark and
all): AE naming the one study result that cannot be right, nothing published."""

from __future__ import annotations

import json
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.builders import example_lines
from tests.integration.kafka_support import wait_for
from tests.integration.test_gateway_labs_live import _at_least, _mllp_send
from tests.integration.test_gateway_live import GatewayProcess, _published

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent.parent / "corpus" / "hl7v2"
CBC = "\r".join(
    [
        "MSH|^~\\&|LABSYS|GZ01LAB|TRIALGUARD|NCT06904729|20251103101500||ORU^R01|CBC-1|P|2.3.1||||||UNICODE",
        "PID|1||E-07^^^NCT06904729^RI",
        "OBR|1||LAB-000123|00001^Automated Count^99MRC|||20251103080000|||||||||||||||||HM",
        "OBX|1|NM|6690-2^WBC^LN||5.21|10*9/L|3.50-9.50|N|||F",
        "OBX|2|NM|704-7^BAS#^LN||0.02|10*9/L|0.00-0.06|N|||F",
        "OBX|3|NM|706-2^BAS%^LN||0.4|%|0.0-1.0|N|||F",
        "OBX|4|NM|751-8^NEU#^LN||3.10|10*9/L|1.80-6.30|N|||F",
        "OBX|5|NM|770-8^NEU%^LN||59.5|%|40.0-75.0|N|||F",
        "OBX|6|NM|731-0^LYM#^LN||1.62|10*9/L|1.10-3.20|N|||F",
        "OBX|7|NM|736-9^LYM%^LN||31.1|%|20.0-50.0|N|||F",
        "OBX|8|NM|789-8^RBC^LN||4.52|10*12/L|3.80-5.10|N|||F",
        "OBX|9|NM|718-7^HGB^LN||132|g/L|115-150|N|||F",
        "OBX|10|NM|4544-3^HCT^LN||40.1|%|35.0-45.0|N|||F",
        "OBX|11|NM|787-2^MCV^LN||88.7|fL|82.0-100.0|N|||F",
        "OBX|12|NM|777-3^PLT^LN||245|10*9/L|125-350|N|||F",
    ]
)
NOT_USED = {2: "704-7", 3: "706-2", 5: "770-8", 7: "736-9", 8: "789-8", 10: "4544-3", 11: "787-2", 12: "777-3"}


@pytest.fixture
def cbc_gateway(settings: KafkaSettings, tmp_path: Path) -> Iterator[tuple[GatewayProcess, str]]:
    """Source lis.gz01 (site GZ-01, Asia/Shanghai) sends as LABSYS at GZ01LAB; nist.lab (same
    site, America/Los_Angeles) as the NIST LRI sample's MSH-3/MSH-4."""
    store = SourceStore(tmp_path / "gateway" / "sources.sqlite3")
    _, key = store.add("lis.gz01", "GZ-01", "LABSYS", "GZ01LAB", mllp_allow=["127.0.0.1"], time_zone="Asia/Shanghai")
    store.add(
        "nist.lab",
        "GZ-01",
        "NIST Test Lab APP",
        "NIST Lab Facility",
        mllp_allow=["127.0.0.1"],
        time_zone="America/Los_Angeles",
    )
    process = GatewayProcess(settings, tmp_path / "gateway", tmp_path / "gateway.log").start()
    yield process, key
    assert process.stop() == 0, process.log()[-3000:]


def _register(gateway: GatewayProcess, key: str, *participants: str) -> None:
    """Each participant registered at GZ-01 through the gateway, as a site's registration would be."""
    template = next(e for e in map(json.loads, example_lines()) if e["event_type"] == "ParticipantRegistered")
    events = [template | {"event_id": str(uuid.uuid4()), "participant_id": p} for p in participants]
    status, body = gateway.post(b"\n".join(json.dumps(e).encode() for e in events), key)
    assert status == 202, body


def _not_used_metric(gateway: GatewayProcess) -> float:
    with urllib.request.urlopen(gateway.url + "/metrics", timeout=60) as response:
        text = response.read().decode()
    line = next(
        x for x in text.splitlines() if x.startswith('trialguard_gateway_results_not_used_total{format="hl7v2"}')
    )
    return float(line.split()[-1])


async def test_a_whole_cbc_over_mllp_publishes_the_study_analytes_and_acknowledges_the_rest(
    settings: KafkaSettings, cbc_gateway: tuple[GatewayProcess, str], tmp_path: Path
) -> None:
    gateway, key = cbc_gateway
    _register(gateway, key, "E-07", "PATID1234")
    count = len(await _published(settings))

    answer = await _mllp_send(gateway.mllp_port, CBC, tmp_path)
    segments = answer.replace("\n", "\r").split("\r")
    assert "MSA|AA|CBC-1" in segments, answer
    infos = [s.split("|") for s in segments if s.startswith("ERR")]
    assert [(e[2], e[4]) for e in infos] == [(f"OBX^{n}^3", "I") for n in NOT_USED]
    assert [e[8] for e in infos] == [
        f"LOINC {code} is not used by the study: not published" for code in NOT_USED.values()
    ]

    await wait_for(lambda: _at_least(settings, count + 4), "the CBC's four study analytes on participant-events")
    labs = [e for _, e in await _published(settings) if e["participant_id"] == "E-07"]
    labs = [e for e in labs if e["event_type"] == "ScreeningLabResulted"]
    assert [(e["payload"]["loinc"], e["payload"]["value"], e["payload"]["unit"]) for e in labs] == [
        ("6690-2", 5.21, "10*9/L"),
        ("751-8", 3.1, "10*9/L"),
        ("731-0", 1.62, "10*9/L"),
        ("718-7", 132.0, "g/L"),
    ]
    assert {(e["occurred_at"], e["recorded_at"], e["source"]["system"]) for e in labs} == {
        ("2025-11-03T08:00:00+08:00", "2025-11-03T10:15:00+08:00", "lis.gz01")
    }
    assert _not_used_metric(gateway) == len(NOT_USED)

    # The NIST LRI CBC, unmodified: its hemoglobin is in g/mL, which cannot be right: AE, nothing in.
    nist = (CORPUS / "ms-lri-cbc.hl7").read_bytes()
    before = len(await _published(settings))
    answer = await _mllp_send(gateway.mllp_port, nist.decode("utf-8"), tmp_path)
    segments = answer.replace("\n", "\r").split("\r")
    assert "MSA|AE|NIST-LRI-NG-002.00" in segments, answer
    errors = [s.split("|") for s in segments if s.startswith("ERR") and s.split("|")[4] == "E"]
    assert errors[0][2] == "OBX^2^6"
    assert "'g/mL' is not known for hemoglobin" in errors[0][8]
    assert len(await _published(settings)) == before
