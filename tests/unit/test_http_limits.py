"""Attacks on the bounds of every HTTP server (``services.http_limits``), over real sockets against
a real uvicorn server on 127.0.0.1: huge and slow bodies, slowloris headers, a crowd of
connections, a forged X-Forwarded-For. Each waits for the server's answer or its EOF, with a
generous timeout; none measures time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException, Request
from starlette.requests import ClientDisconnect

from services.http import HttpServer, serve_asgi
from services.http_limits import BoundedBodies, HttpLimits

WAIT = 20.0
"""How long a test waits for the server to do what it must (it does so in well under a second)."""

LIMIT = 64 * 1024


class Seen:
    """What the app saw: requests that reached it and body bytes it was given."""

    def __init__(self) -> None:
        self.requests = 0
        self.body_bytes = 0


def guarded_app(seen: Seen) -> FastAPI:
    """An app that, like the dashboard, reads the body and then refuses the unauthenticated."""
    app = FastAPI()

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        seen.requests += 1
        async for chunk in request.stream():
            seen.body_bytes += len(chunk)
        raise HTTPException(401, "who are you?")

    @app.get("/whoami")
    def whoami(request: Request) -> dict[str, Any]:
        return {"client": request.client.host if request.client else None}

    return app


@contextlib.asynccontextmanager
async def running(seen: Seen, **limits: Any) -> AsyncIterator[HttpServer]:
    options: dict[str, Any] = {"max_body_bytes": LIMIT, "header_timeout": 0.5, "body_timeout": 0.5} | limits
    http = await serve_asgi(guarded_app(seen), "127.0.0.1", 0, limits=HttpLimits(**options))
    try:
        yield http
    finally:
        await http.stop()


async def connect(http: HttpServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", http.port)


async def read_to_eof(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as closed)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), WAIT):
            data += chunk
    return data


async def test_a_200_mb_body_is_refused_413_from_its_length_before_the_app_reads_a_byte() -> None:
    seen = Seen()
    async with running(seen) as http:
        reader, writer = await connect(http)
        writer.write(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 200000000\r\n\r\n" + b"a" * 1000)
        answer = await read_to_eof(reader)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"larger than 65,536 bytes" in answer
    assert seen.requests == 0, "neither authentication nor parsing ran"


async def test_a_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    seen = Seen()
    async with running(seen) as http:
        reader, writer = await connect(http)
        writer.write(b"POST /login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (8192, b"a" * 8192)
        sent = 0
        with contextlib.suppress(ConnectionError):
            # Until the server closes: a server that kept reading would take all 200 MB.
            while sent < 200_000_000 and not reader.at_eof():
                writer.write(chunk)
                await asyncio.wait_for(writer.drain(), WAIT)
                sent += len(chunk)
                if sent % (1024 * 1024) < len(chunk):
                    await asyncio.sleep(0)  # let the reader see the answer and EOF
        answer = await read_to_eof(reader)
        writer.close()
    assert sent < 20 * 1024 * 1024, f"the client could send {sent:,} bytes"
    assert answer == b"" or answer.startswith(b"HTTP/1.1 413 ")
    assert seen.body_bytes <= LIMIT, "the app was given no more than the limit"


async def test_a_slow_body_answers_408_and_the_connection_is_closed() -> None:
    seen = Seen()
    async with running(seen) as http:
        reader, writer = await connect(http)
        writer.write(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        answer = await read_to_eof(reader)  # the other 90 bytes never come
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")


@pytest.mark.parametrize("more_body", [True, False])
async def test_an_app_that_reads_on_after_a_refusal_ends_quietly(more_body: bool) -> None:
    """Once the body is refused, the app reading on is told the client is gone, and Starlette's
    ``request.stream()`` raises ``ClientDisconnect``: that ends the request quietly (uvicorn would
    log it as "Exception in ASGI application" at every refused body), and only the refusal is sent."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        await send({"type": "http.response.start", "status": 401, "headers": []})
        raise ClientDisconnect()

    body = {"type": "http.request", "body": b"a" * (LIMIT + 1), "more_body": more_body}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return body

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "path": "/login", "headers": [], "client": ("127.0.0.1", 1)}
    await BoundedBodies(app, LIMIT, timeout=WAIT)(scope, receive, send)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]


async def test_an_app_error_before_any_refusal_is_still_raised() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        raise ClientDisconnect()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"small", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        raise AssertionError("nothing is sent")

    scope = {"type": "http", "path": "/login", "headers": [], "client": ("127.0.0.1", 1)}
    with pytest.raises(ClientDisconnect):
        await BoundedBodies(app, LIMIT, timeout=WAIT)(scope, receive, send)


@pytest.mark.parametrize("partial", [b"", b"GET /whoami HTTP/1.1\r\n", b"GET /whoami HTTP/1.1\r\nHost: x\r\nX-a: b"])
async def test_a_connection_that_never_finishes_its_headers_is_closed(partial: bytes) -> None:
    async with running(Seen(), keep_alive_timeout=60) as http:
        reader, writer = await connect(http)
        writer.write(partial)
        assert await read_to_eof(reader) == b""
        writer.close()


async def test_a_kept_alive_connection_that_then_trickles_headers_is_closed() -> None:
    async with running(Seen(), keep_alive_timeout=60) as http:
        reader, writer = await connect(http)
        writer.write(b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
        assert head.startswith(b"HTTP/1.1 200 ")
        await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        writer.write(b"GET /whoami HTTP/1.1\r\nHo")  # then nothing more: the timer keeps running
        assert await read_to_eof(reader) == b""
        writer.close()


async def test_connections_beyond_the_cap_are_answered_503_and_closed() -> None:
    async with running(Seen(), max_connections=3, header_timeout=60, keep_alive_timeout=60) as http:
        held = []
        for _ in range(3):  # each proves itself accepted with one request, then stays open
            reader, writer = await connect(http)
            writer.write(b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
            assert head.startswith(b"HTTP/1.1 200 ")
            held.append(writer)
        reader, writer = await connect(http)
        answer = await read_to_eof(reader)
        writer.close()
        for w in held:
            w.close()
    assert answer.startswith(b"HTTP/1.1 503 ")


async def test_x_forwarded_for_is_not_believed_unless_the_proxy_is_configured() -> None:
    async def client_seen(http: HttpServer) -> bytes:
        reader, writer = await connect(http)
        writer.write(b"GET /whoami HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n")
        answer = await read_to_eof(reader)
        writer.close()
        return answer

    async with running(Seen()) as http:
        assert b'{"client":"127.0.0.1"}' in await client_seen(http)
    async with running(Seen(), forwarded_allow_ips="127.0.0.1") as http:
        assert b'{"client":"203.0.113.9"}' in await client_seen(http)


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="positive"):
        HttpLimits(header_timeout=0)
    with pytest.raises(ValueError, match="at least 1"):
        HttpLimits(max_connections=0)
