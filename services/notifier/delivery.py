"""The delivery loop: sends what the outbox has due, records each outcome, backs off on failure."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import httpx
import structlog

from services.notifier.channels import DeliveryError, send_email, send_webhook
from services.notifier.settings import DeliverySettings, SmtpSettings
from services.notifier.store import Delivery, NotifierStore
from services.notifier.subscriptions import Channel

log = structlog.get_logger("trialguard.notifier.delivery")

IDLE_SECONDS = 1.0
"""The longest the loop sleeps without being woken (a subscription removed, the clock moved)."""


class Deliverer:
    """Sends due outbox rows, ``settings.concurrency`` at a time.

    Args:
        store: the outbox.
        smtp: the mail relay.
        settings: retries, timeouts, concurrency.
    """

    def __init__(self, store: NotifierStore, smtp: SmtpSettings, settings: DeliverySettings) -> None:
        self.store = store
        self.smtp = smtp
        self.settings = settings
        self.wake = asyncio.Event()
        self.outcomes: Counter[str] = Counter()
        """Attempts by outcome since start: delivered, retried, dead (for /metrics)."""

    async def run(self) -> None:
        """Deliver until cancelled."""
        timeout = httpx.Timeout(self.settings.timeout_seconds)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
            while True:
                due = await asyncio.to_thread(self.store.due, self.settings.concurrency * 4)
                if due:
                    gate = asyncio.Semaphore(self.settings.concurrency)
                    await asyncio.gather(*(self._attempt(client, gate, d) for d in due))
                    continue
                self.wake.clear()
                next_due = await asyncio.to_thread(self.store.next_due)
                wait = IDLE_SECONDS if next_due is None else min(IDLE_SECONDS, max(0.0, next_due - time.time()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), wait)

    async def _attempt(self, client: httpx.AsyncClient, gate: asyncio.Semaphore, delivery: Delivery) -> None:
        async with gate:
            try:
                if delivery.channel is Channel.WEBHOOK:
                    await send_webhook(client, delivery)
                else:
                    await send_email(delivery, self.smtp, self.settings)
            except DeliveryError as error:
                await self._failed(delivery, str(error))
                return
            await asyncio.to_thread(self.store.delivered, delivery)
            self.outcomes["delivered"] += 1
            log.info(
                "notification_delivered",
                subscription=delivery.subscription_id,
                finding=delivery.finding_id,
                channel=delivery.channel.value,
                attempt=delivery.attempts + 1,
            )

    async def _failed(self, delivery: Delivery, error: str) -> None:
        attempts = delivery.attempts + 1
        dead = attempts >= self.settings.max_attempts
        retry_at = None if dead else time.time() + self.settings.retry_in(attempts)
        await asyncio.to_thread(self.store.failed, delivery, error, retry_at)
        self.outcomes["dead" if dead else "retried"] += 1
        (log.error if dead else log.warning)(
            "notification_dead_lettered" if dead else "notification_failed",
            subscription=delivery.subscription_id,
            finding=delivery.finding_id,
            channel=delivery.channel.value,
            attempt=attempts,
            error=error,
        )
