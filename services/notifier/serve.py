"""``trialguard notifier serve``: the consumer, the deliverer and the HTTP side, until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Callable, Sequence

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
    studies: Sequence[str],
    store: NotifierStore,
    owners_of: Callable[[str], OwnersLookup],
    smtp: SmtpSettings,
    delivery: DeliverySettings,
    host: str,
    port: int,
) -> int:
    """Serve ``studies`` until SIGTERM/SIGINT; 1 when a consumer or the deliverer stops on an error.

    Each study has its own consumer (its own deviations topic and consumer group, its own owners:
    the users with a role in that study); they share the store and the deliverer.

    Raises:
        ConfigurationError: the address cannot be bound.
    """
    deliverer = Deliverer(store, smtp, delivery)
    consumers = [
        FindingsConsumer(dataclasses.replace(kafka, study_id=study), store, owners_of(study), deliverer.wake.set)
        for study in studies
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        server = await serve_asgi(
            create_app(store, consumers, deliverer),
            host,
            port,
            name="notifier",
            limits=HttpLimits(max_body_bytes=1024, max_connections=32),
        )
    except OSError as e:
        raise ConfigurationError(f"cannot serve the notifier on {host}:{port}: {e.strerror}") from None
    log.info(
        "notifier_listening",
        url=f"http://{host}:{server.port}/operations",
        data=str(store.path),
        studies=list(studies),
    )
    tasks = [
        *(asyncio.create_task(c.run(), name=f"notifier-consumer-{c.settings.study_id}") for c in consumers),
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
