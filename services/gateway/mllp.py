"""An asyncio MLLP listener: HL7 v2 messages in ``\\x0b … \\x1c\\x0d`` frames, one ACK frame back
for each.

The handler does the work (map, publish, build the ACK); this module only frames. Bounds: a
frame is at most ``max_bytes`` (a lab report is a few KB), and a connection idle for
``idle_timeout`` seconds is closed, so neither a huge nor a silent peer holds memory or a task.
A malformed frame (bytes before the start block, not UTF-8) gets an AR ACK; a frame over the
limit, or a handler that fails, closes the connection with a log line and no ACK, so the sender
resends later rather than taking a refusal for an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from services.gateway.hl7_ack import Hl7Error, ack

START = b"\x0b"
END = b"\x1c\x0d"
DEFAULT_HOST = "127.0.0.1"
"""Loopback: exposing the listener is a decision to take (and to put behind a VPN or TLS proxy)."""
DEFAULT_PORT = 2575
MAX_FRAME_BYTES = 1_048_576
IDLE_TIMEOUT_S = 60.0

Handler = Callable[[str], Awaitable[str]]
log = structlog.get_logger("trialguard.gateway.mllp")


async def serve_mllp(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    handle: Handler | None = None,
    *,
    max_bytes: int = MAX_FRAME_BYTES,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> asyncio.Server:
    """Start listening; each framed message is passed to ``handle`` and its ACK framed back.

    Args:
        host: the address to bind, loopback unless told otherwise.
        port: the TCP port; 0 picks a free one (read it from ``server.sockets``).
        handle: message text (segments separated by CR) → ACK text.
        max_bytes: the largest frame accepted.
        idle_timeout: seconds a connection may wait between frames.

    Returns:
        The started server; close it with ``server.close()`` and ``await server.wait_closed()``.
    """
    if handle is None:
        raise TypeError("serve_mllp needs a handler: message -> ACK")
    on_message: Handler = handle

    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        try:
            while True:
                frame = await _read_frame(reader, idle_timeout, peer)
                if frame is None:
                    return
                answer = await _answer(frame, on_message, peer)
                if answer is None:
                    return
                writer.write(START + answer.encode("utf-8") + END)
                await writer.drain()
        except (ConnectionError, OSError) as e:
            log.info("mllp_connection_lost", peer=str(peer), error=type(e).__name__)
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    # The reader's limit bounds what readuntil() buffers while looking for the end block.
    server = await asyncio.start_server(connection, host, port, limit=max_bytes + len(END))
    log.info("mllp_listening", address=[s.getsockname() for s in server.sockets])
    return server


async def _read_frame(reader: asyncio.StreamReader, idle_timeout: float, peer: object) -> bytes | None:
    """The next frame with its start block (whatever preceded it), or None to close."""
    try:
        return await asyncio.wait_for(reader.readuntil(END), idle_timeout)
    except asyncio.IncompleteReadError as e:
        if e.partial.strip():
            log.warning("mllp_frame_truncated", peer=str(peer), bytes=len(e.partial))
        return None
    except asyncio.LimitOverrunError:
        log.warning("mllp_frame_too_large", peer=str(peer))
        return None
    except TimeoutError:
        log.info("mllp_idle_closed", peer=str(peer))
        return None


async def _answer(frame: bytes, handle: Handler, peer: object) -> str | None:
    """The ACK of one frame: the handler's, or an AR for a malformed frame; None to close."""
    body = frame[: -len(END)]
    if not body.startswith(START):
        log.warning("mllp_frame_malformed", peer=str(peer), problem="no start block")
        text = body.split(START, 1)[-1].decode("utf-8", "replace")
        return ack(text, "AR", [Hl7Error("MSH", 1, None, "malformed MLLP frame: no start block (0x0B)", 100)])
    try:
        message = body[len(START) :].decode("utf-8")
    except UnicodeDecodeError as e:
        log.warning("mllp_frame_malformed", peer=str(peer), problem="not UTF-8")
        text = body[len(START) : len(START) + e.start].decode("utf-8")
        return ack(text, "AR", [Hl7Error("MSH", 1, None, f"not UTF-8 at byte {e.start}", 102)])
    try:
        return await handle(message)
    except Exception as e:  # a handler failing must not take the listener down
        log.error("mllp_handler_failed", peer=str(peer), error=type(e).__name__)
        return None
