"""``trialguard notifier serve``: the consumer, the deliverer and the HTTP side, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog

from services.errors import ConfigurationError
from services.http import serve_asgi
from services.http_limits import HttpLimits
from services.kafka import KafkaSettings
from services.notifier.app import create_app
from services.notifier.consumer import FindingsConsumer, OwnersLookup
from services.notifier.delivery import Deliverer
from services.notifier.settings import DeliverySettings, SmtpSettings
from services.notifier.store import NotifierStore

log = structlog.get_logger("trialguard.notifier.serve")

STORE_FILE = "notifier.sqlite3"


async def serve(
    kafka: KafkaSettings,
    store: NotifierStore,
    owners: OwnersLookup,
    smtp: SmtpSettings,
    delivery: DeliverySettings,
    host: str,
    port: int,
) -> int:
    """Serve until SIGTERM/SIGINT; 1 when the consumer or the deliverer stops on an error.

    Raises:
        ConfigurationError: the address cannot be bound.
    """
    deliverer = Deliverer(store, smtp, delivery)
    consumer = FindingsConsumer(kafka, store, owners, deliverer.wake.set)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await serve_asgi(
            create_app(store, consumer, deliverer),
            host,
            port,
            name="notifier",
            limits=HttpLimits(max_body_bytes=1024, max_connections=32),
        )
    except OSError as e:
        raise ConfigurationError(f"cannot serve the notifier on {host}:{port}: {e.strerror}") from None
    log.info("notifier_listening", url=f"http://{host}:{server.port}/operations", data=str(store.path))
    tasks = [
        asyncio.create_task(consumer.run(), name="notifier-consumer"),
        asyncio.create_task(deliverer.run(), name="notifier-deliverer"),
    ]
    waiting = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, waiting, server.task], return_when=asyncio.FIRST_COMPLETED)
    status = 0
    for task in done:
        if task is not waiting and not task.cancelled() and task.exception() is not None:
            log.error("notifier_stopped", task=task.get_name(), error=type(task.exception()).__name__)
            status = 1
    for task in [*tasks, waiting]:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    await server.stop()
    store.close()
    return status
