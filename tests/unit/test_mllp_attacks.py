"""Attacks on the MLLP listener over real sockets on 127.0.0.1: a frame past the cap, a silent or
dripping peer, a crowd of connections, a peer no source lists, a source named from the wrong
address, TLS without a client certificate. Each waits for the ACK or the EOF with a generous
timeout; none measures time."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from contracts import AccessChanged, ParticipantEvent
from services.access_log import AccessLogError
from services.gateway.app import create_app
from services.gateway.hl7_ack import ack
from services.gateway.lab_api import mllp_handler
from services.gateway.mllp import serve_mllp, tls_context
from services.gateway.registry import ParticipantRegistry
from services.gateway.settings import GatewaySettings
from services.gateway.sources import SourceError, SourceStore
from services.kafka import KafkaSettings
from tests.access import broker_away, recording

WAIT = 20.0
END = b"\x1c\x0d"


def oru(application: str = "LABSYS", facility: str = "SITE01LAB", control: str = "MSG00001") -> bytes:
    return "\r".join(
        [
            f"MSH|^~\\&|{application}|{facility}|TRIALGUARD|NCT06904729|20250301103000+0800||ORU^R01^ORU_R01|{control}"
            "|P|2.5.1",
            "PID|1||P-001^^^NCT06904729^RI",
            "OBX|1|NM|751-8^Neutrophils^LN||1.8|10*3/uL|1.5-7.5||||F",
        ]
    ).encode()


async def accept_all(message: str, peer: str) -> str:
    return ack(message, "AA", [])


@contextlib.asynccontextmanager
async def listening(handle: Callable[[str, str], Any] = accept_all, **options: Any) -> AsyncIterator[int]:
    server = await serve_mllp("127.0.0.1", 0, handle, **({"max_bytes": 4096, "idle_timeout": 0.5} | options))
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    data = b""
    with contextlib.suppress(ConnectionResetError, ssl.SSLError):
        while chunk := await asyncio.wait_for(reader.read(65536), WAIT):
            data += chunk
    return data


async def test_a_message_past_the_cap_is_answered_ar_and_the_connection_closed() -> None:
    async with listening() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + oru() + b"\rNTE|1||" + b"x" * 10_000)
        answer = await read_to_eof(reader)
        writer.close()
    assert answer.startswith(b"\x0b")
    assert answer.endswith(END)
    assert b"MSA|AR|MSG00001" in answer
    assert b"larger than 4,096 bytes" in answer


@pytest.mark.parametrize("sent", [b"", b"\x0b" + oru()[:40]], ids=["silent", "unfinished-frame"])
async def test_a_peer_that_sends_no_whole_frame_in_time_is_closed(sent: bytes) -> None:
    async with listening() as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        assert await read_to_eof(reader) == b""
        writer.close()


async def test_a_peer_dripping_a_byte_at_a_time_is_closed_too() -> None:
    async with listening(idle_timeout=1.0) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        closed = asyncio.create_task(read_to_eof(reader))
        frame = b"\x0b" + oru()
        for byte in range(len(frame)):  # a byte every 50 ms: far more often than the 1 s deadline
            if closed.done():
                break
            writer.write(frame[byte : byte + 1])
            await asyncio.wait([closed], timeout=0.05)
        assert await closed == b""
        writer.close()


async def test_connections_past_the_cap_are_closed_on_arrival() -> None:
    async with listening(max_connections=2, idle_timeout=60) as port:
        held = []
        for n in range(2):  # each proves itself served, then stays open
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x0b" + oru(control=f"M{n}") + END)
            assert b"MSA|AA|" in await asyncio.wait_for(reader.readuntil(END), WAIT)
            held.append(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + oru() + END)
        assert await read_to_eof(reader) == b""
        writer.close()
        for w in held:
            w.close()


async def test_a_peer_no_source_lists_is_closed_before_a_byte_is_read() -> None:
    asked: list[str] = []

    def nobody(address: str) -> bool:
        asked.append(address)
        return False

    async with listening(peer_allowed=nobody) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + oru() + END)
        assert await read_to_eof(reader) == b""
        writer.close()
    assert asked == ["127.0.0.1"]


class FakePublisher:
    def __init__(self) -> None:
        self.published: list[list[ParticipantEvent]] = []

    async def publish(self, events: list[ParticipantEvent]) -> None:
        self.published.append(list(events))


async def test_a_source_named_from_an_address_it_may_not_send_from_is_answered_ar(tmp_path: Path) -> None:
    settings = GatewaySettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    sources = SourceStore(settings.sources_path)
    sources.add("lis.local", "SITE01", "LABSYS", "SITE01LAB", mllp_allow=["127.0.0.1/32"])
    sources.add("lis.far", "SITE02", "FARLAB", "SITE02LAB", mllp_allow=["10.9.9.0/24"])
    publisher = FakePublisher()
    app = create_app(settings, sources=sources, publisher=publisher, registry=ParticipantRegistry())
    handler = mllp_handler(app.state)
    async with listening(handler, peer_allowed=sources.mllp_peer_allowed, max_bytes=65536) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"\x0b" + oru("FARLAB", "SITE02LAB") + END)  # 127.0.0.1 claims to be lis.far
        answer = await asyncio.wait_for(reader.readuntil(END), WAIT)
        writer.close()
    assert b"MSA|AR|MSG00001" in answer
    assert b"source 'lis.far' may not send from 127.0.0.1" in answer
    assert publisher.published == []
    assert sources.mllp_peer_allowed("10.9.9.7")
    assert not sources.mllp_peer_allowed("10.9.10.7")


def test_allow_lists_are_checked_and_kept(tmp_path: Path) -> None:
    sources = SourceStore(tmp_path / "sources.sqlite3")
    with pytest.raises(SourceError, match="an IP address or network"):
        sources.add("lis", "SITE01", "LABSYS", "LAB", mllp_allow=["10.0.0.300"])
    with pytest.raises(SourceError, match="needs --hl7-application"):
        sources.add("lis", "SITE01", mllp_allow=["10.0.0.5"])
    sources.add("lis", "SITE01", "LABSYS", "LAB")
    assert not sources.mllp_peer_allowed("127.0.0.1"), "no list: no MLLP"
    changes: list[AccessChanged] = []
    allowed = sources.allow_mllp("lis", ["10.0.0.5", "10.1.0.0/16"], recording(changes)).mllp_allow
    assert allowed == ("10.0.0.5/32", "10.1.0.0/16")
    assert SourceStore(tmp_path / "sources.sqlite3").get("lis").mllp_allow == ("10.0.0.5/32", "10.1.0.0/16")  # type: ignore[union-attr]
    assert sources.allow_mllp("lis", [], recording(changes)).mllp_allow == ()
    assert [(c.action.value, c.subject, c.operator) for c in changes] == [("source-mllp-allowed", "lis", "ops")] * 2
    with pytest.raises(AccessLogError):
        sources.allow_mllp("lis", ["10.0.0.5"], broker_away())
    assert SourceStore(tmp_path / "sources.sqlite3").get("lis").mllp_allow == ()  # type: ignore[union-attr]


# --- TLS with client certificates ------------------------------------------------------------


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    **kw: Any,
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if kw.get("ip"):
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(kw["ip"]))]), False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("TrialGuard test CA", ca_key, None)
    ca_crt, _ = _write(tmp_path / "ca", ca, ca_key)
    server_key, client_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server_crt, server_key_path = _write(
        tmp_path / "server", _certificate("gateway", server_key, (ca.subject, ca_key), ip="127.0.0.1"), server_key
    )
    client_crt, client_key_path = _write(
        tmp_path / "client", _certificate("lis.site01", client_key, (ca.subject, ca_key)), client_key
    )
    return {
        "ca": ca_crt,
        "server_crt": server_crt,
        "server_key": server_key_path,
        "client_crt": client_crt,
        "client_key": client_key_path,
    }


async def _over_tls(port: int, pki: dict[str, Path], with_client_certificate: bool) -> bytes:
    context = ssl.create_default_context(cafile=pki["ca"])
    if with_client_certificate:
        context.load_cert_chain(pki["client_crt"], pki["client_key"])
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    except (ssl.SSLError, ConnectionError):
        return b""
    try:
        writer.write(b"\x0b" + oru() + END)
        with contextlib.suppress(ssl.SSLError, ConnectionError, asyncio.IncompleteReadError):
            return await asyncio.wait_for(reader.readuntil(END), WAIT)  # the ACK
        return b""  # refused: the server closed without one
    finally:
        writer.close()


async def test_over_tls_a_peer_without_a_client_certificate_is_refused_and_one_with_it_served(
    pki: dict[str, Path],
) -> None:
    context = tls_context(pki["server_crt"], pki["server_key"], pki["ca"])
    async with listening(ssl=context, idle_timeout=60) as port:
        assert await _over_tls(port, pki, with_client_certificate=False) == b""
        answer = await _over_tls(port, pki, with_client_certificate=True)
    assert b"MSA|AA|MSG00001" in answer


def test_the_sources_commands_set_and_show_the_allow_list(tmp_path: Path) -> None:
    import argparse
    import io

    from services.gateway.commands import add_gateway_commands

    parser = argparse.ArgumentParser(prog="trialguard")
    add_gateway_commands(parser.add_subparsers(dest="command", required=True))

    changes: list[AccessChanged] = []

    def run(*argv: str) -> tuple[int, str, str]:
        args = parser.parse_args([*argv, "--data-dir", str(tmp_path)])
        out, err = io.StringIO(), io.StringIO()
        extra = {} if argv[1] == "list" else {"recorder": recording(changes)}
        return args.run(args, out, err, **extra), out.getvalue(), err.getvalue()

    code, _, _ = run("sources", "add", "lis", "--site", "S1", "--hl7-application", "A", "--hl7-facility", "F",
                     "--mllp-allow", "10.0.0.5", "--mllp-allow", "10.2.0.0/16")  # fmt: skip
    assert code == 0
    assert "\t10.0.0.5/32,10.2.0.0/16\t" in run("sources", "list")[1]
    assert run("sources", "mllp-allow", "lis", "192.0.2.0/24") == (
        0,
        "source lis may send MLLP from: 192.0.2.0/24\n",
        "",
    )
    assert [c.action.value for c in changes] == ["source-added", "source-mllp-allowed"]
    code, _, err = run("sources", "mllp-allow", "lis", "not-an-address")
    assert code == 2
    assert "'not-an-address': an IP address or network" in err
    assert run("sources", "mllp-allow", "nobody")[:2] == (1, "")
