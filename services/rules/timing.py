"""Where a transaction's time goes, and how late the event loop runs: what finds a latency tail.

Each partition transaction is timed by phase (``PHASES``) into histograms with fine buckets, and
a probe measures how late the event loop wakes a sleeper (a stall there delays every partition at
once: a long computation, a full garbage collection). Both are exposed on the service's own
registry next to ``services.metrics`` (``trialguard_phase_seconds{phase=…}``,
``trialguard_event_loop_lag_seconds``), and ``bench/live.py`` prints them.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

PHASE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds: fine where the targets are (tens to a few hundred milliseconds)."""

PHASES = {
    "poll": "the fetch loop's getmany call that returned records",
    "fold": "processing a batch's records (parse, fold, decide) into the batch",
    "wait": "from the batch's first record processed to the start of its transaction (batching)",
    "send": "handing the findings, dead letters and checkpoint to the producer",
    "round": "encoding and handing a snapshot round to the producer",
    "commit": "the progress record, the offsets and the commit (until the broker has committed)",
    "transaction": "from the batch's first record processed to its commit (the whole)",
}
"""The phases of a partition transaction that are timed, and what each covers."""

LOOP_PROBE_SECONDS = 0.02
"""How often the event-loop probe sleeps; its lag is how much later than that it wakes up."""


@dataclass
class Histogram:
    """Cumulative-bucket histogram of seconds (Prometheus style), with an approximate quantile."""

    bounds: tuple[float, ...] = PHASE_BUCKETS
    counts: list[int] = field(default_factory=list)
    """Per bucket (not cumulative); the last one is beyond every bound."""
    total: float = 0.0
    largest: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)

    @property
    def count(self) -> int:
        return sum(self.counts)

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.total += seconds
        self.largest = max(self.largest, seconds)

    def cumulative(self) -> list[tuple[str, float]]:
        running, out = 0, []
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((str(bound), float(running)))
        out.append(("+Inf", float(running + self.counts[-1])))
        return out


@dataclass(eq=False)  # registered by identity
class Timings(Collector):
    """The phase histograms and the event-loop lag of one rules service."""

    phases: dict[str, Histogram] = field(default_factory=lambda: {name: Histogram() for name in PHASES})
    loop_lag: Histogram = field(default_factory=Histogram)
    gc_pauses: Histogram = field(default_factory=Histogram)
    """Seconds of each full collection the collector started itself (``gc.callbacks``)."""
    take_over_collections: Histogram = field(default_factory=Histogram)
    """Seconds of each full collection and freeze after a take-over (``collect_and_freeze``):
    asked for, between two partitions' work, so kept apart from the collector's own."""
    _gc_started: float = 0.0
    _asked: bool = False

    def register(self, registry: CollectorRegistry) -> None:
        """Expose these on ``registry`` (the service's own)."""
        registry.register(self)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if info.get("generation") != 2 or self._asked:
            return
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self.gc_pauses.observe(time.perf_counter() - self._gc_started)

    def collect_and_freeze(self) -> None:
        """A full collection, then every object left moved out of the collector's sight
        (``gc.freeze``), timed as a take-over's, not as a pause the collector chose."""
        started = time.perf_counter()
        self._asked = True
        try:
            gc.collect()  # what is garbage now is not frozen with the rest
        finally:
            self._asked = False
        gc.freeze()
        self.take_over_collections.observe(time.perf_counter() - started)

    def observe(self, phase: str, seconds: float) -> None:
        self.phases[phase].observe(seconds)

    async def probe_loop(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (or cancelled): how much later than asked the event loop wakes a
        sleeper; and meanwhile the time of each full garbage collection."""
        gc.callbacks.append(self._on_gc)
        try:
            while not stop.is_set():
                asked = time.perf_counter()
                await asyncio.sleep(LOOP_PROBE_SECONDS)
                self.loop_lag.observe(max(0.0, time.perf_counter() - asked - LOOP_PROBE_SECONDS))
        finally:
            with contextlib.suppress(ValueError):
                gc.callbacks.remove(self._on_gc)

    def collect(self) -> Iterator[Metric]:
        phases = HistogramMetricFamily(
            "trialguard_phase_seconds",
            "Seconds of each timed phase of a partition transaction: "
            + "; ".join(f"{name}: {what}" for name, what in PHASES.items()),
            labels=["phase"],
        )
        largest = GaugeMetricFamily(
            "trialguard_phase_seconds_max", "Longest of each phase since the start", labels=["phase"]
        )
        for name, h in self.phases.items():
            phases.add_metric([name], h.cumulative(), h.total)
            largest.add_metric([name], h.largest)
        yield phases
        yield largest
        yield HistogramMetricFamily(
            "trialguard_event_loop_lag_seconds",
            f"How much later than asked the event loop woke a {LOOP_PROBE_SECONDS * 1000:.0f} ms sleeper",
            buckets=self.loop_lag.cumulative(),
            sum_value=self.loop_lag.total,
        )
        yield HistogramMetricFamily(
            "trialguard_gc_full_seconds",
            "Seconds of each full (oldest generation) garbage collection the collector started",
            buckets=self.gc_pauses.cumulative(),
            sum_value=self.gc_pauses.total,
        )
        yield HistogramMetricFamily(
            "trialguard_gc_take_over_seconds",
            "Seconds of each full collection and freeze after a partition's take-over",
            buckets=self.take_over_collections.cumulative(),
            sum_value=self.take_over_collections.total,
        )
