"""The soak run's samples: each minute's row, its quantiles, the rules group's lag, RSS slopes.

Used by ``bench/soak.py``.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import defaultdict
from dataclasses import dataclass

from services.kafka import KafkaSettings, group_lag, rules_group_id


@dataclass
class Sample:
    minute: float
    rss: dict[str, tuple[int, float, float]]
    """process name: (incarnation, minutes since it started, MiB)"""
    lag: int | None
    p50_ms: float | None
    p99_ms: float | None
    findings: int
    sent: int


def quantile(values: list[float], q: int) -> float | None:
    if len(values) < 2:
        return None
    return statistics.quantiles(values, n=100)[q - 1] * 1000


async def lag_of(settings: KafkaSettings) -> int | None:
    """The rules group's lag, or None when the broker does not say within 20 s. The query is left
    to end on its own then: a client's clean-up can hang on a broker that is away."""
    query = asyncio.create_task(group_lag(settings, rules_group_id(settings)))
    done, _ = await asyncio.wait({query}, timeout=20)
    if not done:
        query.cancel()
        return None
    if query.exception() is not None:  # the broker away: no figure this minute
        return None
    lag = query.result()
    return None if lag is None else sum(lag.values())


def slope_per_hour(points: list[tuple[float, int, float]]) -> float | None:
    """MiB per hour from (minute, incarnation, MiB): each incarnation's own line, one slope for all
    (the pooled within-incarnation least-squares slope), so that a restart's drop is no trend."""
    groups: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for minute, incarnation, mib in points:
        groups[incarnation].append((minute / 60, mib))
    num = den = 0.0
    for pts in groups.values():
        if len(pts) < 2:
            continue
        tx = sum(t for t, _ in pts) / len(pts)
        my = sum(m for _, m in pts) / len(pts)
        num += sum((t - tx) * (m - my) for t, m in pts)
        den += sum((t - tx) ** 2 for t, _ in pts)
    return None if den == 0 else num / den
