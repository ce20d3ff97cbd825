"""The access log's writer: every change to a user, token or source is published before it is kept.

A store makes a change inside an open SQLite transaction and calls ``AccessRecorder.record``
before committing; ``record`` returns only once Kafka has the ``AccessChanged`` event (an
idempotent ``acks=all`` producer). When Kafka does not take it, ``record`` raises
``AccessLogError``, the transaction rolls back and nothing changes: a change the audit trail does
not show must not happen (21 CFR 11.10(e)). The price: while the broker is away, no account or
key can be changed; stopping the dashboard or gateway process still cuts every session at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from contracts import AccessAction, AccessChanged
from services.kafka import KafkaSettings, ensure_topics

log = structlog.get_logger("trialguard.access_log")

PUBLISH_SECONDS = 20.0
"""How long a change waits for Kafka before it is given up (and not made)."""

_OPERATOR = re.compile(r"[A-Za-z0-9._@:-]{1,64}")


class AccessLogError(Exception):
    """Kafka did not take an access-log event: the change it describes was not made."""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def os_operator() -> str:
    """The OS user running the command: the operator named by CLI changes.

    Raises:
        AccessLogError: the OS user name cannot be told or cannot be a contract name.
    """
    try:
        name = getpass.getuser()
    except (OSError, KeyError) as error:
        raise AccessLogError(f"cannot tell which OS user runs this command: {error}") from None
    if not _OPERATOR.fullmatch(name):
        raise AccessLogError(f"OS user name {name[:80]!r} is not 1-64 of A-Z a-z 0-9 . _ @ : -")
    return name


Publish = Callable[[AccessChanged], None]
"""Publish one event and return once Kafka has it; raise ``AccessLogError`` otherwise."""


@dataclass(frozen=True)
class AccessRecorder:
    """Builds access-log events for one operator and publishes them.

    Attributes:
        study_id: The study whose access log this is.
        operator: Who makes the changes (an OS user, or a dashboard user).
        via: ``cli`` or ``dashboard``.
        publish: Sends one event; see ``Publish``.
        clock: The UTC time of each change (tests pass a fixed one).
    """

    study_id: str
    operator: str
    via: Literal["cli", "dashboard"]
    publish: Publish
    clock: Callable[[], dt.datetime] = field(default=utc_now)

    def record(
        self, action: AccessAction, subject_kind: Literal["user", "source"], subject: str, **fields: Any
    ) -> AccessChanged:
        """Publish one change; ``fields`` are the other fields of ``AccessChanged``.

        ``operator=`` in ``fields`` names another operator (a user setting their own password).

        Raises:
            AccessLogError: Kafka did not take the event.
        """
        operator = fields.pop("operator", None) or self.operator
        event = AccessChanged(
            change_id=uuid.uuid4(),
            study_id=self.study_id,
            action=action,
            operator=operator,
            via=self.via,
            subject_kind=subject_kind,
            subject=subject,
            changed_at=self.clock().astimezone(dt.UTC),
            **fields,
        )
        self.publish(event)
        log.info("access_changed", action=action.value, subject=subject, operator=operator, via=self.via)
        return event


async def publish_to_kafka(settings: KafkaSettings, event: AccessChanged, seconds: float = PUBLISH_SECONDS) -> None:
    """Publish one event to the study's access log with an idempotent ``acks=all`` producer.

    Raises:
        AccessLogError: the broker did not take it within ``seconds``.
    """
    producer = AIOKafkaProducer(
        **settings.client_kwargs(),
        acks="all",
        enable_idempotence=True,
        client_id="trialguard-access-log",
    )
    try:
        async with asyncio.timeout(seconds):
            await ensure_topics(settings)
            await producer.start()
            await producer.send_and_wait(
                settings.topics.access_log, event.model_dump_json().encode(), key=event.subject.encode()
            )
    except (TimeoutError, KafkaError, OSError) as error:
        raise AccessLogError(
            f"the access log ({settings.topics.access_log} at {settings.bootstrap_servers}) did not take the change "
            f"({type(error).__name__}): nothing was changed; try again when the broker is back"
        ) from None
    finally:
        try:
            await producer.stop()
        except Exception:
            log.debug("access_log_producer_stop_failed")


def cli_recorder(settings: KafkaSettings) -> AccessRecorder:
    """The recorder of a CLI command: operator = the OS user; each event published on its own."""
    return AccessRecorder(
        settings.study_id, os_operator(), "cli", lambda event: asyncio.run(publish_to_kafka(settings, event))
    )
