"""What one HTTP client may ask of a TrialGuard server: bounds on connections, time and bytes.

uvicorn bounds some of this itself; the rest is here:

* **Connections**: at most ``max_connections`` open at once. One more is answered ``503`` and
  closed as soon as it is accepted, before anything is read from it (uvicorn's own
  ``limit_concurrency`` only looks at complete requests, so a crowd of connections that never
  finish their headers would not count); requests beyond it while connections are under the cap
  are answered 503 by uvicorn (``limit_concurrency``).
* **Headers**: a connection must complete a request's headers within ``header_timeout`` seconds
  of opening (or of its previous response), else it is closed: a slowloris client sending one
  header byte at a time holds nothing for long. h11 itself bounds the headers' size
  (``h11_max_incomplete_event_size``); uvicorn has no such timer, so :class:`BoundedH11Protocol`
  adds it.
* **Bodies**: :class:`BoundedBodies`, the outermost ASGI layer, answers 413 for a body over
  ``max_body_bytes`` before the app (its authentication, its parsing) sees any of it: at once
  from ``Content-Length``, or as soon as a chunked body passes the bound. A body that has not
  arrived whole within ``body_timeout`` seconds of its request answers 408. Both close the
  connection. uvicorn stops reading a connection while 64 KiB of body wait unread, so a body
  the app does not read is not buffered either.
* **Idle keep-alive**: ``keep_alive_timeout`` (uvicorn's ``timeout_keep_alive``).
* **Proxies**: ``X-Forwarded-For``/``-Proto`` are believed only from the addresses in
  ``forwarded_allow_ips``; by default from none, so a client cannot pick the address that the
  login throttle counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger("trialguard.http")

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class HttpLimits:
    """The bounds of one HTTP server (see the module's docstring for what each one does).

    Attributes:
        max_body_bytes: the largest request body; 413 beyond.
        max_connections: connections open at once; one more is answered 503 and closed.
        header_timeout: seconds to complete a request's headers.
        body_timeout: seconds to receive a request's whole body.
        keep_alive_timeout: seconds an idle keep-alive connection stays open.
        max_header_bytes: the largest request line and headers (h11's incomplete event size).
        forwarded_allow_ips: comma-separated addresses or networks whose ``X-Forwarded-*``
            headers are believed (``"*"``: any); None believes no one.
    """

    max_body_bytes: int = 1024 * 1024
    max_connections: int = 256
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_header_bytes: int = 16 * 1024
    forwarded_allow_ips: str | None = None

    def __post_init__(self) -> None:
        if min(self.max_body_bytes, self.max_connections, self.max_header_bytes) < 1:
            raise ValueError("max_body_bytes, max_connections and max_header_bytes must be at least 1")
        if min(self.header_timeout, self.body_timeout, self.keep_alive_timeout) <= 0:
            raise ValueError("header_timeout, body_timeout and keep_alive_timeout must be positive")

    def uvicorn_options(self) -> dict[str, Any]:
        """The keyword arguments of ``uvicorn.Config`` that enforce these limits."""
        return {
            "http": bounded_protocol(self),
            # uvicorn answers 503 once connections (or tasks) reach the limit, the new one included.
            "limit_concurrency": self.max_connections + 1,
            "timeout_keep_alive": self.keep_alive_timeout,
            "h11_max_incomplete_event_size": self.max_header_bytes,
            "proxy_headers": self.forwarded_allow_ips is not None,
            # uvicorn reads FORWARDED_ALLOW_IPS (default loopback) when given None: never let it.
            "forwarded_allow_ips": self.forwarded_allow_ips or "",
        }


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a deadline for each request's headers.

    ``limits`` is set on the subclass that :func:`bounded_protocol` makes for a server.
    """

    limits: HttpLimits = HttpLimits()
    _header_timer: asyncio.TimerHandle | None = None
    _waiting_cycle: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning("http_connection_refused", reason="too_many_connections", limit=self.limits.max_connections)
            transport.write(_BUSY)
            transport.close()
            return
        self._await_headers()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._waiting_cycle:  # a request's headers are complete: it began
            self._stop_waiting()

    def on_response_complete(self) -> None:
        self._await_headers()  # before: uvicorn may start a pipelined request at once
        super().on_response_complete()
        if self.transport.is_closing():
            self._stop_waiting()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_headers(self) -> None:
        self._stop_waiting()
        self._waiting_cycle = self.cycle
        self._header_timer = self.loop.call_later(self.limits.header_timeout, self._headers_late)

    def _stop_waiting(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            client = self.client[0] if self.client else "unknown"
            log.info("http_connection_closed", reason="headers_too_slow", client=client)
            self.transport.close()


def bounded_protocol(limits: HttpLimits) -> type[BoundedH11Protocol]:
    """A :class:`BoundedH11Protocol` class bound to ``limits``, for ``uvicorn.Config(http=...)``."""
    return type("BoundedH11", (BoundedH11Protocol,), {"limits": limits})


class BoundedBodies:
    """ASGI middleware: 413 for a body over the bound, 408 for a body too slow, before the app
    reads it; the app then sees the client as gone (``http.disconnect``) and its answer is dropped.

    Args:
        app: the ASGI app.
        max_bytes: the largest body.
        timeout: seconds from the request's start to its body's end.
    """

    def __init__(self, app: Any, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await self.refuse(scope, send, 413, f"the body is larger than {self.max_bytes:,} bytes")
            return
        guard = _Guard(self, scope, receive, send)
        try:
            await self.app(scope, *guard.channels())
        except Exception as e:
            if not guard.refused:
                raise
            # The app read on after the refusal and was told the client is gone (Starlette raises
            # ClientDisconnect): the refusal was the answer and is logged, this is no error of the app.
            log.debug("http_app_stopped_after_refusal", error=type(e).__name__)

    async def refuse(self, scope: dict[str, Any], send: Any, status: int, detail: str) -> None:
        """Answer ``status`` with a JSON ``detail`` and ``Connection: close``, and log it."""
        client = scope.get("client")
        log.info("http_request_refused", status=status, client=client[0] if client else "unknown", path=scope["path"])
        body = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _Guard:
    """The receive and send channels of one request under :class:`BoundedBodies`."""

    def __init__(self, bounds: BoundedBodies, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self._bounds = bounds
        self._scope = scope
        self._receive = receive
        self._send = send
        self._deadline = time.monotonic() + bounds.timeout
        self._received = 0
        self._body_done = False
        self._started = False
        self._refused = False

    def channels(self) -> tuple[Any, Any]:
        return self.receive, self.send

    @property
    def refused(self) -> bool:
        """Whether this request was answered with a refusal (413 or 408)."""
        return self._refused

    async def receive(self) -> dict[str, Any]:
        if self._refused:
            return {"type": "http.disconnect"}
        if self._body_done:  # waiting for a disconnect (a streamed answer): no deadline
            message: dict[str, Any] = await self._receive()
            return message
        try:
            message = await asyncio.wait_for(self._receive(), max(0.0, self._deadline - time.monotonic()))
        except TimeoutError:
            return await self._refuse(408, f"the body did not arrive within {self._bounds.timeout:g} seconds")
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            if self._received > self._bounds.max_bytes:
                return await self._refuse(413, f"the body is larger than {self._bounds.max_bytes:,} bytes")
            self._body_done = not message.get("more_body", False)
        return message

    async def send(self, message: dict[str, Any]) -> None:
        if self._refused:
            return  # the refusal was the answer
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

    async def _refuse(self, status: int, detail: str) -> dict[str, Any]:
        self._refused = True
        if not self._started:  # else the answer has begun: closing the connection is all we can do
            await self._bounds.refuse(self._scope, self._send, status, detail)
        return {"type": "http.disconnect"}


def add_http_limit_args(parser: argparse.ArgumentParser, env_prefix: str, max_body_bytes: int) -> None:
    """``--forwarded-allow-ips``, ``--max-body-bytes``, ``--max-connections`` and the timeouts of a
    serve command; each also read from ``{env_prefix}_<NAME>`` (e.g. TRIALGUARD_DASHBOARD_MAX_CONNECTIONS)."""
    defaults = HttpLimits(max_body_bytes=max_body_bytes)

    def env(name: str, default: object) -> str:
        return os.environ.get(f"{env_prefix}_{name}") or str(default)

    parser.add_argument(
        "--forwarded-allow-ips",
        default=os.environ.get(f"{env_prefix}_FORWARDED_ALLOW_IPS") or None,
        metavar="ADDRESSES",
        help="comma-separated addresses or networks of the reverse proxies whose X-Forwarded-For/-Proto are "
        f"believed (env {env_prefix}_FORWARDED_ALLOW_IPS; default: none, the peer's address is the client's)",
    )
    for option, name, kind, default, what in (
        ("--max-body-bytes", "MAX_BODY_BYTES", int, defaults.max_body_bytes, "the largest request body (413 beyond)"),
        (
            "--max-connections",
            "MAX_CONNECTIONS",
            int,
            defaults.max_connections,
            "connections open at once (503 beyond)",
        ),
        ("--header-timeout", "HEADER_TIMEOUT", float, defaults.header_timeout, "seconds to send a request's headers"),
        ("--body-timeout", "BODY_TIMEOUT", float, defaults.body_timeout, "seconds to send a request's body (408)"),
        ("--keep-alive-timeout", "KEEP_ALIVE_TIMEOUT", float, defaults.keep_alive_timeout, "idle keep-alive seconds"),
    ):
        parser.add_argument(
            option,
            type=kind,
            default=kind(env(name, default)),
            help=f"{what} (env {env_prefix}_{name}; default %(default)s)",
        )


def limits_from_args(args: argparse.Namespace) -> HttpLimits:
    """The limits that :func:`add_http_limit_args` parsed.

    Raises:
        ValueError: a limit that is not positive.
    """
    return HttpLimits(
        max_body_bytes=args.max_body_bytes,
        max_connections=args.max_connections,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        keep_alive_timeout=args.keep_alive_timeout,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
