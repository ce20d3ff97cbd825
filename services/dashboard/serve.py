"""``trialguard dashboard serve``: the dashboard app under uvicorn, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog

from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.errors import ConfigurationError
from services.http import serve_asgi
from services.http_limits import limits_from_args
from services.kafka import KafkaSettings

log = structlog.get_logger("trialguard.dashboard.serve")


async def serve(kafka: KafkaSettings, args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: the address cannot be bound, or a limit is not positive.
    """
    try:
        limits = limits_from_args(args)
    except ValueError as e:
        raise ConfigurationError(f"dashboard serve: {e}") from None
    settings = DashboardSettings(kafka, args.data_dir, args.host, args.port, args.secure_cookies)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await serve_asgi(
            create_app(settings), settings.host, settings.port, lifespan="on", name="dashboard", limits=limits
        )
    except OSError as e:
        raise ConfigurationError(
            f"cannot serve the dashboard on {settings.host}:{settings.port}: {e.strerror}"
        ) from None
    log.info("dashboard_listening", url=f"http://{settings.host}:{server.port}/", data_dir=str(settings.data_dir))
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait([server.task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await server.stop()
    return 0
