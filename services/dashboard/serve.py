"""``trialguard dashboard serve``: the dashboard app under uvicorn, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
from pathlib import Path
from typing import Any, Literal

import structlog

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings, default_data_dir
from services.http import HttpServer, _bind, _quiet_uvicorn, _Server
from services.kafka import KafkaSettings
from services.rules import ConfigurationError

log = structlog.get_logger("trialguard.dashboard.serve")


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """The dashboard's own options (the broker and study options are the CLI's common ones)."""
    parser.add_argument(
        "--host",
        default=os.environ.get("TRIALGUARD_DASHBOARD_HOST", "127.0.0.1"),
        help="address to listen on (env TRIALGUARD_DASHBOARD_HOST; default %(default)s)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=os.environ.get("TRIALGUARD_DASHBOARD_PORT", "8080"),
        help="port to listen on (env TRIALGUARD_DASHBOARD_PORT; 0: any free port; default %(default)s)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="read model (disposable), users and session key (env TRIALGUARD_DASHBOARD_DATA; default %(default)s)",
    )
    parser.add_argument(
        "--secure-cookies", action="store_true", help="send the session cookie over HTTPS only (behind a TLS proxy)"
    )


async def serve(kafka: KafkaSettings, args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: the address cannot be bound.
    """
    settings = DashboardSettings(kafka, args.data_dir, args.host, args.port, args.secure_cookies)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await serve_asgi(create_app(settings), settings.host, settings.port, lifespan="on")
    except OSError as e:
        raise ConfigurationError(
            f"cannot serve the dashboard on {settings.host}:{settings.port}: {e.strerror}"
        ) from None
    log.info("dashboard_listening", url=f"http://{settings.host}:{server.port}/", data_dir=str(settings.data_dir))
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([server._task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await server.stop()
    return 0


async def serve_asgi(app: Any, host: str, port: int, *, lifespan: Literal["on", "off"] = "on") -> HttpServer:
    """Run ``app`` under uvicorn in this event loop; returns once it listens (after the lifespan started)."""
    import uvicorn

    _quiet_uvicorn()
    sock = _bind(host, port)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan=lifespan,
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="dashboard-http")
    listening = asyncio.create_task(server.listening.wait())
    await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
    if not listening.done():
        listening.cancel()
        sock.close()
        task.result()
        raise RuntimeError("the dashboard stopped while starting (see the log above)")
    return HttpServer(server, [sock], task)
