"""HL7 v2 over a real MLLP socket as labs send it, through the gateway's own handler: a batch gets
one answer with an ACK per message (each message all or nothing on its own), a byte-order mark and
an 8859/1 body are read, and bytes that are not in the declared character set get an AR naming
their offset rather than a crash or a silent close."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from contracts import encode
from services.gateway.app import create_app
from services.gateway.lab_api import mllp_handler
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceStore
from services.kafka import KafkaSettings
from tests.unit.test_mllp_attacks import END, WAIT, FakePublisher, listening

MSH = "MSH|^~\\&|LABSYS|SITE01LAB|TRIALGUARD|NCT06904729|20250301103000||ORU^R01|{control}|P|2.3.1"


def oru(control: str, obx: str = "OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL|1.5-7.5||||F", charset: str = "") -> str:
    header = MSH.format(control=control) + (f"||||||{charset}" if charset else "")
    pid = "PID|1||P-001^Müller^^NCT06904729^RI"
    return "\r".join([header, pid, f"OBR|1||FIL-{control}|CBC|||20250301080000", obx])


async def exchange(tmp_path: Path, frame: bytes) -> tuple[str, FakePublisher]:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    sources.add("lis.local", "SITE01", "LABSYS", "SITE01LAB", mllp_allow=["127.0.0.1/32"], time_zone="Asia/Shanghai")
    publisher = FakePublisher()
    registry = ParticipantRegistry({"P-001": "SITE01"})
    app = create_app(settings, sources=sources, publisher=publisher, registry=registry)
    async with listening(mllp_handler(app.state), peer_allowed=sources.mllp_peer_allowed, max_bytes=65536) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + frame + END)
        answer = await asyncio.wait_for(reader.readuntil(END), WAIT)
        writer.close()
    return answer.strip(b"\x0b").removesuffix(END).decode(), publisher


async def test_a_batch_is_answered_with_one_ack_per_message_and_each_is_all_or_nothing(tmp_path: Path) -> None:
    bad = oru("M-2", "OBX|1|NM|751-8^Neutrophils^LN||1.8|mg/dL|1.5-7.5||||F")
    batch = "\r".join(["FHS|^~\\&|LABSYS", "BHS|^~\\&|LABSYS||||||||B-1", oru("M-1"), bad, "BTS|2", "FTS|1"])
    answer, publisher = await exchange(tmp_path, batch.encode())
    segments = answer.split("\r")
    assert segments[0].startswith("BHS|")
    assert [s for s in segments if s.startswith("MSA")] == ["MSA|AA|M-1", "MSA|AE|M-2"]
    assert segments[-1] == "BTS|2"
    (events,) = publisher.published
    assert [(e.event_type, json.loads(encode(e))["payload"]["value"]) for e in events] == [
        ("ScreeningLabResulted", 1.8)
    ]


async def test_a_byte_order_mark_and_an_8859_1_body_are_read(tmp_path: Path) -> None:
    frame = b"\xef\xbb\xbf" + oru("M-3", charset="8859/1").encode("latin-1")
    answer, publisher = await exchange(tmp_path, frame)
    assert "MSA|AA|M-3" in answer.split("\r")
    (events,) = publisher.published
    assert events[0].occurred_at.isoformat() == "2025-03-01T08:00:00+08:00"


async def test_bytes_outside_the_declared_character_set_get_an_ar_naming_the_offset(tmp_path: Path) -> None:
    frame = oru("M-4", charset="UNICODE UTF-8").encode("latin-1")  # the ü is one byte, not UTF-8
    answer, publisher = await exchange(tmp_path, frame)
    assert "MSA|AR|M-4" in answer.split("\r")
    offset = frame.index("ü".encode("latin-1"))
    assert f"not UTF-8 at byte {offset} (MSH-18 says UNICODE UTF-8)" in answer
    assert publisher.published == []
