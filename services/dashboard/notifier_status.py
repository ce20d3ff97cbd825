"""The notifier's deliveries and dead letters on the operations page, read from the notifier's
own ``/operations`` over HTTP (the dashboard does not import the notifier: components stay apart).

The notifier may be down or slow: a short timeout, and the page says so instead of failing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger("trialguard.dashboard.notifier_status")

TIMEOUT_SECONDS = 2.0
"""How long the operations page waits for the notifier before saying it is unreachable."""

STATES = ("pending", "delivered", "dead")


@dataclass(frozen=True)
class NotifierStatus:
    """What the operations page shows of the notifier.

    Attributes:
        configured: a notifier URL is set (``--notifier-url``).
        reachable: the notifier answered with its operations document.
        totals: deliveries by state of the study's subscriptions.
        subscriptions: per subscription id, deliveries by state.
        dead_letters: the newest dead letters (ids, attempts, the kind of the last failure).
        problem: why the notifier could not be read (the kind of error only).
    """

    configured: bool
    reachable: bool = False
    totals: dict[str, int] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, int]] = field(default_factory=dict)
    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


def _dead_letter(raw: dict[str, Any]) -> dict[str, Any]:
    """One dead letter for the page: the notifier's fields as text, its time as a datetime."""
    finished = raw.get("finished_at")
    return {
        "subscription_id": str(raw.get("subscription_id") or ""),
        "finding_id": str(raw.get("finding_id") or ""),
        "channel": str(raw.get("channel") or ""),
        "attempts": int(raw.get("attempts") or 0),
        "last_error": str(raw.get("last_error") or ""),
        "finished_at": dt.datetime.fromtimestamp(finished, dt.UTC) if isinstance(finished, int | float) else None,
    }


def _counts(raw: Any) -> dict[str, int]:
    source = raw if isinstance(raw, dict) else {}
    return {state: int(source.get(state) or 0) for state in STATES}


async def notifier_status(base_url: str | None, study_id: str, wait_seconds: float = TIMEOUT_SECONDS) -> NotifierStatus:
    """The notifier's delivery counts and dead letters for ``study_id``, or why there are none."""
    if not base_url:
        return NotifierStatus(configured=False)
    url = base_url.rstrip("/") + "/operations"
    try:
        async with httpx.AsyncClient(timeout=wait_seconds, follow_redirects=False, trust_env=False) as client:
            answer = await client.get(url, params={"study": study_id})
            answer.raise_for_status()
            document = answer.json()
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        dead = document.get("dead_letters") or []
        return NotifierStatus(
            configured=True,
            reachable=True,
            totals=_counts(document.get("totals")),
            subscriptions={str(k): _counts(v) for k, v in (document.get("subscriptions") or {}).items()},
            dead_letters=[_dead_letter(d) for d in dead[:100] if isinstance(d, dict)],
        )
    except httpx.HTTPStatusError as error:
        problem = f"HTTP {error.response.status_code}"
    except (httpx.HTTPError, ValueError, TypeError, AttributeError, OverflowError, OSError) as error:
        problem = type(error).__name__
    log.warning("notifier_unreachable", problem=problem)
    return NotifierStatus(configured=True, problem=problem)
