"""Live updates: what the read model applied, fanned out to every open page (server-sent events),
and to the requests that wait for their own review to be applied."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator

from services.dashboard.store import Applied

QUEUE_SIZE = 100
"""Updates a slow page may fall behind by; beyond that it misses some (it refetches anyway)."""


class Broadcaster:
    """Fans each applied batch out to the pages listening, and resolves review waiters."""

    def __init__(self) -> None:
        self._listeners: dict[asyncio.Queue[str], tuple[str | None, str | None]] = {}
        """Each open page's queue, its study, and the only site it may hear of (None: every site)."""
        self._review_waiters: dict[str, asyncio.Future[None]] = {}

    @property
    def listeners(self) -> int:
        """Pages listening now."""
        return len(self._listeners)

    def applied(self, applied: Applied) -> None:
        """Called by the consumer in the event loop after each batch."""
        for review_id in applied.reviews:
            waiter = self._review_waiters.pop(review_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        if not (applied.findings or applied.reviews):
            return
        everything = json.dumps({"findings": len(applied.findings), "reviews": len(applied.reviews)})
        for queue, (study, scope) in list(self._listeners.items()):
            if study is not None and study != applied.study:
                continue  # another study's activity is none of this page's business
            if scope is None:
                message = everything
            else:  # a site user hears of its own site's findings only, not of the others' activity
                sites = applied.sites
                findings = sum(1 for site in sites[: len(applied.findings)] if site == scope)
                reviews = sum(1 for site in sites[len(applied.findings) :] if site == scope)
                if not (findings or reviews):
                    continue
                message = json.dumps({"findings": findings, "reviews": reviews})
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(message)

    def expect_review(self, review_id: str) -> asyncio.Future[None]:
        """A future resolved when the review is applied: made before publishing, so it cannot miss it."""
        return self._review_waiters.setdefault(review_id, asyncio.get_running_loop().create_future())

    def forget_review(self, review_id: str) -> None:
        """Stop expecting a review (it was never published, or the request stopped waiting)."""
        self._review_waiters.pop(review_id, None)

    async def wait_for_review(self, review_id: str, waiter: asyncio.Future[None], seconds: float) -> bool:
        """True once the review expected with ``expect_review`` is applied; False after ``seconds``."""
        try:
            await asyncio.wait_for(asyncio.shield(waiter), seconds)
        except TimeoutError:
            return False
        finally:
            self._review_waiters.pop(review_id, None)
        return True

    async def updates(self, site_scope: str | None, study: str | None = None) -> AsyncGenerator[dict[str, str], None]:
        """Server-sent events for one page, until it goes away.

        Args:
            site_scope: the only site the page's user may see (None: every site).
            study: the only study the page hears of (None: a single-study app's every batch).
        """
        queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_SIZE)
        self._listeners[queue] = (study, site_scope)
        try:
            yield {"event": "ready", "data": "{}"}
            while True:
                yield {"event": "changed", "data": await queue.get()}
        finally:
            self._listeners.pop(queue, None)
