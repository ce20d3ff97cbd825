"""An asyncio MLLP listener: HL7 v2 messages in ``\\x0b … \\x1c\\x0d`` frames, one ACK frame back
for each.

The handler does the work (map, publish, build the ACK); this module frames, and bounds what any
peer can hold:

* **who**: ``peer_allowed(address)`` is asked for each new connection; a peer it refuses is closed
  before a byte is read (the gateway allows the addresses of every source's ``--mllp-allow``
  list; the handler then checks the peer against the list of the source MSH-3/MSH-4 names).
* **how many**: at most ``max_connections`` connections at once; more are closed on arrival.
* **how much**: a frame is at most ``max_bytes`` (a lab report is a few KB). A frame past it is
  answered AR (when its start is an MSH segment we can answer) and the connection closed: the
  sender must not resend it as is.
* **how long**: each frame must arrive whole within ``idle_timeout`` seconds of the previous ACK
  (or of the connection), so neither a silent peer nor one dripping a byte at a time holds a task.
* **TLS** (optional): ``ssl`` wraps every connection; with a client CA, a peer must present a
  certificate signed by it (:func:`tls_context`). The handshake has ``idle_timeout`` too.

A malformed frame (bytes before the start block, bytes not in the character set MSH-18 names,
UTF-8 when none) gets an AR ACK; a handler that fails
closes the connection with a log line and no ACK, so the sender resends later rather than taking a
refusal for an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

from services.gateway.hl7_ack import Hl7Error, ack
from services.gateway.hl7_wire import WireError, decode

START = b"\x0b"
END = b"\x1c\x0d"
DEFAULT_HOST = "127.0.0.1"
"""Loopback: exposing the listener is a decision to take (with --mllp-allow lists, and TLS)."""
DEFAULT_PORT = 2575
MAX_FRAME_BYTES = 1_048_576
IDLE_TIMEOUT_S = 60.0
MAX_CONNECTIONS = 32
"""A site's LIS keeps one or two connections open; 32 frames at the cap hold 32 MiB at most."""
_READ_BYTES = 65_536

Handler = Callable[[str, str], Awaitable[str]]
"""(message text, peer address) → ACK text."""
log = structlog.get_logger("trialguard.gateway.mllp")


def peer_address(peer: object) -> str:
    """The IP address of a ``peername``, IPv4-mapped IPv6 written as IPv4; ``"unknown"`` if none."""
    if not isinstance(peer, tuple) or not peer:
        return "unknown"
    address = str(peer[0])
    with contextlib.suppress(ValueError):
        parsed = ipaddress.ip_address(address)
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
    return address


def tls_context(cert: Path, key: Path, client_ca: Path | None = None) -> ssl.SSLContext:
    """A server TLS context (TLS 1.2 or later) with this certificate and key; with ``client_ca``,
    peers must present a certificate it signed.

    Raises:
        OSError: a file cannot be read.
        ssl.SSLError: a file is not a certificate or key, or the key does not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    if client_ca is not None:
        context.load_verify_locations(cafile=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def serve_mllp(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    handle: Handler | None = None,
    *,
    max_bytes: int = MAX_FRAME_BYTES,
    idle_timeout: float = IDLE_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS,
    peer_allowed: Callable[[str], bool] | None = None,
    ssl: ssl.SSLContext | None = None,
) -> asyncio.Server:
    """Start listening; each framed message is passed to ``handle`` and its ACK framed back.

    Args:
        host: the address to bind, loopback unless told otherwise.
        port: the TCP port; 0 picks a free one (read it from ``server.sockets``).
        handle: (message text with segments separated by CR, peer address) → ACK text.
        max_bytes: the largest frame accepted.
        idle_timeout: seconds a frame (or the TLS handshake) may take to arrive whole.
        max_connections: connections at once; more are closed on arrival.
        peer_allowed: whether a peer address may connect at all; None allows every peer.
        ssl: a server TLS context (:func:`tls_context`), or None for plain TCP.

    Returns:
        The started server; close it with ``server.close()`` and ``await server.wait_closed()``.
    """
    if handle is None:
        raise TypeError("serve_mllp needs a handler: (message, peer) -> ACK")
    on_message: Handler = handle
    open_connections = 0

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_connections
        peer = peer_address(writer.get_extra_info("peername"))
        open_connections += 1
        try:
            if open_connections > max_connections:
                log.warning("mllp_connection_refused", peer=peer, reason="too_many_connections", limit=max_connections)
                return
            if peer_allowed is not None and not peer_allowed(peer):
                log.warning("mllp_connection_refused", peer=peer, reason="address_not_allowed")
                return
            await _converse(reader, writer, peer, on_message, max_bytes, idle_timeout)
        except (ConnectionError, OSError) as e:
            log.info("mllp_connection_lost", peer=peer, error=type(e).__name__)
        finally:
            open_connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    server = await asyncio.start_server(
        connection, host, port, limit=_READ_BYTES, ssl=ssl, ssl_handshake_timeout=idle_timeout if ssl else None
    )
    log.info("mllp_listening", address=[s.getsockname() for s in server.sockets], tls=ssl is not None)
    return server


async def _converse(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    peer: str,
    handle: Handler,
    max_bytes: int,
    idle_timeout: float,
) -> None:
    """Frames in, ACKs out, until the peer closes or breaks a bound."""
    pending = bytearray()
    while True:
        deadline = time.monotonic() + idle_timeout
        while (end := pending.find(END)) < 0:
            if len(pending) > max_bytes + len(END):
                log.warning("mllp_frame_too_large", peer=peer, limit=max_bytes)
                refusal = _too_large_ack(bytes(pending[:4096]), max_bytes)
                if refusal is not None:
                    writer.write(START + refusal.encode("utf-8") + END)
                    await asyncio.wait_for(writer.drain(), idle_timeout)
                return
            try:
                chunk = await asyncio.wait_for(reader.read(_READ_BYTES), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                log.info("mllp_idle_closed", peer=peer, pending_bytes=len(pending))
                return
            if not chunk:
                if pending.strip():
                    log.warning("mllp_frame_truncated", peer=peer, bytes=len(pending))
                return
            pending += chunk
        frame = bytes(pending[: end + len(END)])
        del pending[: end + len(END)]
        answer = await _answer(frame, handle, peer)
        if answer is None:
            return
        writer.write(START + answer.encode("utf-8") + END)
        await asyncio.wait_for(writer.drain(), idle_timeout)


def _too_large_ack(head: bytes, max_bytes: int) -> str | None:
    """An AR for a frame over the limit, echoing its MSH; None when its start is not an MSH."""
    text = head.lstrip(START).decode("utf-8", "replace")
    if not text.startswith("MSH"):
        return None
    segment = text.replace("\n", "\r").split("\r", 1)[0]
    return ack(segment, "AR", [Hl7Error("MSH", 1, None, f"message larger than {max_bytes:,} bytes", 100)])


async def _answer(frame: bytes, handle: Handler, peer: str) -> str | None:
    """The ACK of one frame: the handler's, or an AR for a malformed frame; None to close."""
    body = frame[: -len(END)]
    if not body.startswith(START):
        log.warning("mllp_frame_malformed", peer=peer, problem="no start block")
        text = body.split(START, 1)[-1].decode("utf-8", "replace")
        return ack(text, "AR", [Hl7Error("MSH", 1, None, "malformed MLLP frame: no start block (0x0B)", 100)])
    try:
        message = decode(body[len(START) :])
    except WireError as e:
        log.warning("mllp_frame_malformed", peer=peer, problem="character set")
        text = body[len(START) : len(START) + 4096].decode("ascii", "replace").lstrip("\ufeff")
        return ack(text, "AR", [Hl7Error("MSH", 1, 18, str(e), 102)])
    try:
        return await handle(message, peer)
    except Exception as e:  # a handler failing must not take the listener down
        log.error("mllp_handler_failed", peer=peer, error=type(e).__name__)
        return None
