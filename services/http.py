"""The one HTTP stack of every TrialGuard process: FastAPI (Starlette) under uvicorn.

    GET /health    200 {"status": "ready"} once the process is ready, else 503 with its status,
                   e.g. {"status": "waiting_for_broker"} or {"status": "restoring"}
    GET /metrics   Prometheus text format (``prometheus_client.generate_latest``)

``observability_router`` gives these two routes to any FastAPI app (the dashboard includes them);
``serve_http`` runs them alone, for the rules service, inside the running event loop (any other
path answers 404); ``serve_asgi`` runs any app the same way (the dashboard's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any, Literal

import structlog
import uvicorn
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.http_limits import BoundedBodies, HttpLimits
from services.log_limits import REPEATED_ATTRIBUTE, RepeatLimit, repeat_interval_from_env

log = structlog.get_logger("trialguard.http")

STOP_SECONDS = 5.0
"""How long a stop waits for requests in flight before uvicorn cancels them."""


def observability_router(registry: CollectorRegistry, status: Callable[[], str]) -> APIRouter:
    """``GET /health`` and ``GET /metrics``, to include in a FastAPI app.

    Args:
        registry: the process's own registry, exposed as is on /metrics.
        status: the process's status now; ``"ready"`` answers 200, anything else 503.

    Returns:
        A router for ``app.include_router(...)``; its routes stay out of the OpenAPI schema.
    """
    router = APIRouter(include_in_schema=False)

    @router.get("/health")
    def health() -> JSONResponse:
        now = status()
        return JSONResponse({"status": now}, status_code=200 if now == "ready" else 503)

    @router.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def observability_app(registry: CollectorRegistry, status: Callable[[], str]) -> FastAPI:
    """A FastAPI app serving only /health and /metrics (no docs, no OpenAPI, no redirect of
    ``/health/``: all else is 404)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.include_router(observability_router(registry, status))
    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signals alone.

    ``uvicorn.Server.serve`` swaps SIGINT/SIGTERM for its own handler (``capture_signals``) and
    re-raises them when it stops: in our process that would stop HTTP before the service has
    drained, and a re-raised SIGTERM after the CLI removed its handler would kill the process.
    The process's owner (``services.cli``) handles signals and calls ``HttpServer.stop``.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class HttpServer:
    """A uvicorn server running as a task of the current event loop.

    Attributes:
        sockets: the listening sockets (one), bound before the server starts.
        port: the bound port (the one picked when asked for port 0).
    """

    def __init__(self, server: uvicorn.Server, sockets: list[socket.socket], task: asyncio.Task[None]) -> None:
        self._server = server
        self.sockets = sockets
        self._task = task
        self.port: int = sockets[0].getsockname()[1]

    @property
    def task(self) -> asyncio.Task[None]:
        """The server's task: done once it has stopped, with its exception if it failed."""
        return self._task

    async def stop(self) -> None:
        """Stop accepting, finish or cancel requests in flight, and wait for the server's task."""
        self._server.should_exit = True
        await self._task


def _bind(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening socket on the first address of ``host``.

    Bound here rather than by uvicorn so that an address in use raises ``OSError`` to the caller
    (uvicorn logs it and calls ``sys.exit``), and so that the port is known at once.
    """
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # As asyncio does on POSIX: a restarted process need not wait for TIME_WAIT to pass.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(min(backlog, 1024))
    except BaseException:
        sock.close()
        raise
    return sock


def _quiet_uvicorn() -> None:
    """Route uvicorn's warnings and errors through structlog; drop its info lines, and repeats of
    one beyond one per interval (a client sending garbage makes a warning per request)."""
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, _ToStructlog) for h in logger.handlers):
        bridge = _ToStructlog()
        bridge.addFilter(RepeatLimit(repeat_interval_from_env(), bridge.report_repeats, describe=_template))
        logger.addHandler(bridge)
    logger.setLevel(logging.WARNING)
    logger.propagate = False  # else the root handler prints them again as plain text


class _ToStructlog(logging.Handler):
    """One structlog event per uvicorn log record: its logger, its message template without the
    arguments, and an exception's type (arguments, exception messages and tracebacks could quote
    request data)."""

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, object] = {"logger": record.name}
        if isinstance(record.msg, str):
            fields["message"] = _template(record)
        if record.exc_info and record.exc_info[0] is not None:
            fields["error"] = record.exc_info[0].__name__
        if repeated := getattr(record, REPEATED_ATTRIBUTE, 0):
            fields["repeated"] = repeated
        log.log(record.levelno, "uvicorn_" + record.levelname.lower(), **fields)

    def report_repeats(self, logger: str, level: int, message: str, repeated: int) -> None:
        """Repeats of a record that stopped (or outlived the process) before a record carried them."""
        log.log(level, "uvicorn_repeated", logger=logger, message=message, repeated=repeated)

    def flush(self) -> None:
        """At exit (``logging.shutdown``): write the counts of repeats no record carried yet."""
        for limit in self.filters:
            if isinstance(limit, RepeatLimit):
                limit.flush()


def _template(record: logging.LogRecord) -> str:
    return record.msg[:200] if isinstance(record.msg, str) else ""


async def serve_asgi(
    app: Any,
    host: str,
    port: int,
    *,
    lifespan: Literal["on", "off"] = "off",
    close_connections: bool = False,
    name: str = "http",
    limits: HttpLimits | None = None,
) -> HttpServer:
    """Run an ASGI app under uvicorn in the running event loop, leaving signals to the caller.

    Args:
        app: the ASGI app (FastAPI, Starlette).
        host: the address to listen on.
        port: the port; 0 picks a free one (see ``HttpServer.port``).
        lifespan: ``"on"`` runs the app's startup and shutdown.
        close_connections: answer every request with ``Connection: close`` (one request per
            connection, so the simplest probe can read to EOF).
        name: the name of the server's task.
        limits: bounds on connections, header and body time, body size, and which proxies are
            believed (``services.http_limits``); the defaults when not given.

    Returns:
        The running server, listening (and its lifespan started) when this returns.

    Raises:
        OSError: the address cannot be bound (in use, unknown host).
        RuntimeError: the server stopped while starting (e.g. the app's startup failed).
    """
    _quiet_uvicorn()
    limits = limits or HttpLimits()
    sock = _bind(host, port, backlog=limits.max_connections)
    config = uvicorn.Config(
        BoundedBodies(app, limits.max_body_bytes, limits.body_timeout),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        server_header=False,
        headers=[("Connection", "close")] if close_connections else None,
        timeout_graceful_shutdown=int(STOP_SECONDS),
        **limits.uvicorn_options(),
    )
    server = _Server(config)
    task = asyncio.create_task(_run(server, sock), name=name)
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        listening.cancel()
        sock.close()
        task.result()  # raises what stopped it
        raise RuntimeError("the HTTP server stopped while starting")
    return HttpServer(server, [sock], task)


async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        await server.serve(sockets=[sock])
    except SystemExit as e:
        # uvicorn exits the process when its startup fails; here it ends only this server's task
        # (a SystemExit in a task would escape the event loop and skip the caller's clean stop).
        raise RuntimeError(f"uvicorn could not start (exit status {e.code})") from None


async def serve_http(
    port: int, registry: CollectorRegistry, status: Callable[[], str], host: str = "127.0.0.1"
) -> HttpServer:
    """Serve /health and /metrics on ``host``:``port`` until ``stop()``.

    Args:
        port: the port; 0 picks a free one (see ``HttpServer.port``).
        registry: exposed on /metrics.
        status: answered on /health.
        host: loopback unless told otherwise (a container publishing the port needs 0.0.0.0).

    Returns:
        The running server, listening when this returns.

    Raises:
        OSError: the address cannot be bound (in use, unknown host).
    """
    # GET only: no body worth more than a few bytes, and a handful of scrapers at a time.
    limits = HttpLimits(max_body_bytes=1024, max_connections=32)
    http = await serve_asgi(observability_app(registry, status), host, port, close_connections=True, limits=limits)
    log.info("http_listening", address=f"{host}:{http.port}")
    return http
