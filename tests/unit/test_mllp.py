"""The MLLP listener against an independent client: python-hl7's ``mllp_send`` command."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.gateway.hl7_ack import ack
from services.gateway.mllp import serve_mllp

MLLP_SEND = str(Path(sys.executable).with_name("mllp_send"))
MESSAGE = "\r".join(
    [
        "MSH|^~\\&|LABSYS|SITE01LAB|TRIALGUARD|NCT06904729|20250301103000+0800||ORU^R01^ORU_R01|MSG00001|P|2.5.1",
        "PID|1||P-001^^^NCT06904729^RI",
        "OBR|1|ORD1|FIL123|SCREEN|||20250301080000+0800",
        "OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL|1.5-7.5||||F",
    ]
)
received: list[str] = []


async def fake_handle(message: str, peer: str) -> str:
    received.append(message)
    return ack(message, "AA", [], control_id="ACK1")


@pytest.fixture
async def port() -> AsyncIterator[int]:
    received.clear()
    server = await serve_mllp("127.0.0.1", 0, fake_handle, max_bytes=4096)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def mllp_send(port: int, path: Path, *options: str) -> str:
    process = await asyncio.create_subprocess_exec(
        MLLP_SEND, "--port", str(port), "--file", str(path), *options, "127.0.0.1",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    return out.decode()


async def test_mllp_send_gets_the_handlers_ack(port: int, tmp_path: Path) -> None:
    path = tmp_path / "oru.hl7"
    # Without --loose, mllp_send reads a file of MLLP frames; it prints each ACK frame as received.
    path.write_bytes(b"\x0b" + MESSAGE.encode() + b"\r\x1c\r")
    out = await mllp_send(port, path)
    assert received == [MESSAGE]
    assert out.startswith("\x0b")
    assert out.endswith("\x1c\r\n")  # mllp_send adds the newline
    segments = out.strip("\x0b\x1c\r\n").split("\r")
    assert segments[0].startswith("MSH|^~\\&|TRIALGUARD|NCT06904729|LABSYS|SITE01LAB|")
    assert "ACK^R01^ACK|ACK1|P|2.5.1" in segments[0]
    assert segments[1] == "MSA|AA|MSG00001"


async def test_two_messages_on_one_connection_get_two_acks(port: int, tmp_path: Path) -> None:
    second = MESSAGE.replace("MSG00001", "MSG00002")
    path = tmp_path / "two.hl7"
    path.write_text(MESSAGE.replace("\r", "\n") + "\n" + second.replace("\r", "\n") + "\n")
    out = await mllp_send(port, path, "--loose")  # plain HL7 text, a message per MSH
    assert [m.split("\r")[0].split("|")[9] for m in received] == ["MSG00001", "MSG00002"]
    assert "MSA|AA|MSG00001" in out
    assert "MSA|AA|MSG00002" in out


async def test_a_frame_without_start_block_gets_an_ar(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"garbage" + b"\x1c\x0d")
    await writer.drain()
    reply = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), 5)
    writer.close()
    assert reply.startswith(b"\x0b")
    assert b"MSA|AR|" in reply
    assert b"ERR||MSH^1|100^Segment sequence error^HL70357|E" in reply
    assert received == []


async def test_a_frame_over_the_limit_that_is_no_message_closes_the_connection(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\x0b" + b"x" * 10_000)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed, no ACK: nothing to answer
    writer.close()
    assert received == []


async def test_the_listener_binds_loopback_by_default() -> None:
    server = await serve_mllp(port=0, handle=fake_handle)
    assert server.sockets[0].getsockname()[0] == "127.0.0.1"
    server.close()
    await server.wait_closed()
