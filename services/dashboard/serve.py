"""``trialguard dashboard serve``: the dashboard app under uvicorn, until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog

from protocol import registry
from services.allocator import fix_mmap_threshold, giving_back_free_memory
from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings, parse_overdue_days
from services.errors import ConfigurationError
from services.http import serve_asgi
from services.http_limits import limits_from_args
from services.kafka import KafkaSettings
from services.studies import chosen_studies as serving

log = structlog.get_logger("trialguard.dashboard.serve")


def chosen_studies(args: argparse.Namespace) -> tuple[str, ...]:
    """The studies to serve, as ``rules serve`` chooses them (``services.studies``): those named
    with ``--study`` (repeatable) or in TRIALGUARD_STUDY_ID (comma-separated), else every
    installed one; in that order, once each.

    Raises:
        ConfigurationError: a name a topic cannot have, no study at all, or a study without an
            installed protocol package (the message lists the installed ones).
    """
    studies = serving(args.study)
    installed = registry.studies()
    for study in studies:
        if study not in installed:
            known = ", ".join(installed) or "none"
            raise ConfigurationError(f"study {study[:60]!r}: no protocol package is installed for it ({known} are)")
    return tuple(studies)


async def serve(kafka: KafkaSettings, args: argparse.Namespace, studies: tuple[str, ...] = ()) -> int:
    """Serve ``studies`` (``kafka.study_id`` alone when empty) until SIGTERM/SIGINT.

    Raises:
        ConfigurationError: the address cannot be bound, or a limit or overdue setting is wrong.
    """
    studies = studies or (kafka.study_id,)
    fix_mmap_threshold()  # Kafka's fetch buffers out of the main heap (services/allocator.py)
    try:
        limits = limits_from_args(args)
        overdue = parse_overdue_days(getattr(args, "overdue_days", []), studies)
    except ValueError as e:
        raise ConfigurationError(f"dashboard serve: {e}") from None
    notifier_url = getattr(args, "notifier_url", None)
    if notifier_url and not notifier_url.startswith(("http://", "https://")):
        raise ConfigurationError(f"dashboard serve: --notifier-url {notifier_url[:80]!r}: an http:// or https:// URL")
    settings = DashboardSettings(
        kafka,
        args.data_dir,
        args.host,
        args.port,
        args.secure_cookies,
        studies=studies,
        overdue_days=overdue,
        notifier_url=notifier_url or None,
    )
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
    log.info(
        "dashboard_listening",
        url=f"http://{settings.host}:{server.port}/",
        data_dir=str(settings.data_dir),
        studies=list(studies),
    )
    waiting = asyncio.create_task(stop.wait())
    async with giving_back_free_memory():
        await asyncio.wait([server.task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    await server.stop()
    return 0
