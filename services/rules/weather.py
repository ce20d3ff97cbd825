"""The broker going away is weather: wait with capped backoff, say what is awaited, go on.

Only configuration errors (an unknown study, an unreadable setting, a topic name the broker
refuses) end the service; a broker that is down, restarting or electing leaders does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import traceback
from dataclasses import dataclass, field
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

log = structlog.get_logger("trialguard.rules")

BROKER_PROBE_SECONDS = 2.0
"""How often the service asks the broker whether it is there."""

BROKER_PROBE_TIMEOUT_SECONDS = 5.0
"""How long an answer to that question may take."""

# Kafka errors that say "the broker cannot serve this", not "wait": they will not pass by waiting.
_CONFIGURATION_ERRORS = frozenset(
    {
        "InvalidTopicError",
        "TopicAuthorizationFailedError",
        "GroupAuthorizationFailedError",
        "TransactionalIdAuthorizationFailed",
        "ClusterAuthorizationFailedError",
        "InvalidConfigurationError",
        "UnsupportedVersionError",
        "PolicyViolationError",
    }
)


def is_configuration_error(error: BaseException) -> bool:
    """Whether ``error`` says the broker refuses our settings (as opposed to being unavailable)."""
    return isinstance(error, KafkaError) and type(error).__name__ in _CONFIGURATION_ERRORS


def error_fields(error: BaseException) -> dict[str, Any]:
    """Log fields for an exception, safe to log: its type and where it was raised, and the
    message only for Kafka and OS errors (which carry broker addresses, never event values)."""
    fields: dict[str, Any] = {"error": type(error).__name__}
    frames = traceback.extract_tb(error.__traceback__)
    if frames:
        last = frames[-1]
        fields["raised_at"] = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno} {last.name}"
    if isinstance(error, (KafkaError, OSError)):
        fields["detail"] = str(error)[:300]
    return fields


@dataclass
class Backoff:
    """Capped exponential backoff with jitter: 0.25 s, 0.5 s, 1 s … up to ``cap`` seconds.

    The jitter keeps instances that lost the broker together from returning in lockstep; it
    affects only when a retry happens, never what is decided.
    """

    first: float = 0.25
    cap: float = 5.0
    attempts: int = 0
    _jitter: random.Random = field(default_factory=random.Random, repr=False)

    def next_delay(self) -> float:
        delay = min(self.cap, self.first * 2**self.attempts)
        self.attempts += 1
        return float(delay * self._jitter.uniform(0.8, 1.2))

    def reset(self) -> None:
        self.attempts = 0

    async def wait(self, stop: asyncio.Event, delay: float | None = None) -> None:
        """Sleep for ``delay`` (the next delay by default), or less if ``stop`` is set meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.next_delay() if delay is None else delay)


@dataclass
class BrokerWatch:
    """Whether the broker answers, asked every few seconds (aiokafka itself reconnects; this is
    what /health and the log say meanwhile)."""

    bootstrap_servers: str
    reachable: bool = False

    async def watch(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """Ask for metadata until ``stop``: the broker is unreachable once two probes in a row
        went unanswered, so that one slow answer on a busy machine is not an outage."""
        failures = 0
        while not stop.is_set():
            try:
                async with asyncio.timeout(BROKER_PROBE_TIMEOUT_SECONDS):
                    await consumer.topics()
            except Exception as e:
                failures += 1
                if failures == 2:
                    self.reachable = False
                    log.warning("waiting_for_broker", bootstrap_servers=self.bootstrap_servers, **error_fields(e))
            else:
                if not self.reachable:
                    log.info("broker_reachable", bootstrap_servers=self.bootstrap_servers)
                self.reachable = True
                failures = 0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), BROKER_PROBE_SECONDS)
