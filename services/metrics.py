"""Prometheus metrics of the rules service, exposed through ``prometheus_client``.

The service mutates plain counters on ``Metrics`` (``batch_committed``, ``restored``,
``transactions_failed += 1``, ``lag = {...}``); a collector on the instance's own
``CollectorRegistry`` turns the current values into metric families at each scrape. Several
services run in one test process, so nothing here touches prometheus_client's global registry,
and custom families carry no ``_created`` series. ``services.http`` serves the registry.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: batch latency from the first record handled to the transaction committed."""


def _never_ready() -> bool:
    return False


def _no_participants() -> tuple[int, int]:
    return 0, 0


@dataclass
class Metrics:
    """Counters of one rules service process. consumed = processed + dead_lettered, always.

    Attributes:
        ready: whether every assigned partition is open; the service that owns these metrics
            binds it to its own status (``trialguard_ready``).
        registry: the registry to expose (``generate_latest(metrics.registry)``), this
            instance's own.
    """

    consumed: int = 0
    processed: int = 0
    dead_lettered: int = 0
    findings_by_rule: Counter[str] = field(default_factory=Counter)
    lag: dict[int, int] = field(default_factory=dict)
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum: float = 0.0
    snapshots_restored: int = 0
    restore_seconds: float = 0.0
    transactions_failed: int = 0
    partitions_reopened: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    """Events of note by outcome: ``correction_unmatched`` (processed, changing nothing) and
    ``participant_state_full`` (dead-lettered by the state bound, ``events.bounds``)."""
    ready: Callable[[], bool] = field(default=_never_ready, repr=False, compare=False)
    participants: Callable[[], tuple[int, int]] = field(default=_no_participants, repr=False, compare=False)
    """(decoded in memory, at rest on local disk): the assigned partitions' participants, bound by
    the service like ``ready`` (``services.rules.restored``)."""
    registry: CollectorRegistry = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Families(self))

    def batch_committed(
        self,
        processed: int,
        dead_lettered: int,
        rule_ids: Iterable[str],
        seconds: float,
        outcomes: Counter[str] | None = None,
    ) -> None:
        if outcomes:
            self.outcomes.update(outcomes)
        self.consumed += processed + dead_lettered
        self.processed += processed
        self.dead_lettered += dead_lettered
        self.findings_by_rule.update(rule_ids)
        self.latency_count += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1

    def restored(self, snapshots_read: int, seconds: float) -> None:
        self.snapshots_restored += snapshots_read
        self.restore_seconds += seconds

    def counts(self) -> dict[str, int]:
        return {
            "consumed": self.consumed,
            "processed": self.processed,
            "dead_lettered": self.dead_lettered,
            "findings": sum(self.findings_by_rule.values()),
        }


class _Families(Collector):
    """The metric families of one ``Metrics``, built from its values at each collect."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        m = self.metrics
        yield GaugeMetricFamily("trialguard_ready", "1 once every assigned partition is restored", int(m.ready()))
        yield CounterMetricFamily(
            "trialguard_events_consumed_total", "Records consumed from participant-events", m.consumed
        )
        yield CounterMetricFamily("trialguard_events_processed_total", "Events processed by the protocol", m.processed)
        yield CounterMetricFamily(
            "trialguard_events_dead_lettered_total", "Records sent to the dead-letter topic", m.dead_lettered
        )
        findings = CounterMetricFamily(
            "trialguard_findings_total", "Deviations and alerts raised, by rule id", labels=["rule_id"]
        )
        for rule, n in sorted(m.findings_by_rule.items()):
            findings.add_metric([rule], n)
        yield findings
        noted = CounterMetricFamily(
            "trialguard_event_outcomes_total",
            "Events of note by outcome: correction_unmatched (named no kept result), "
            "participant_state_full (dead-lettered: the participant's state is at its bound)",
            labels=["outcome"],
        )
        for outcome, n in sorted(m.outcomes.items()):
            noted.add_metric([outcome], n)
        yield noted
        in_memory, at_rest = m.participants()
        participants = GaugeMetricFamily(
            "trialguard_participants",
            "Participants of the assigned partitions: decoded in memory (worked on since the last snapshot "
            "round) or at rest on local disk",
            labels=["where"],
        )
        participants.add_metric(["in_memory"], in_memory)
        participants.add_metric(["at_rest"], at_rest)
        yield participants
        lag = GaugeMetricFamily(
            "trialguard_consumer_lag", "Records not yet consumed, by input partition", labels=["partition"]
        )
        for partition, n in sorted(m.lag.items()):
            lag.add_metric([str(partition)], n)
        yield lag
        # Bucket counts are already cumulative (batch_committed counts every bound >= seconds).
        buckets = [(str(bound), n) for bound, n in zip(LATENCY_BUCKETS, m.latency_buckets, strict=True)]
        yield HistogramMetricFamily(
            "trialguard_batch_seconds",
            "Seconds from a batch's first record to its commit",
            buckets=[*buckets, ("+Inf", m.latency_count)],
            sum_value=m.latency_sum,
        )
        yield CounterMetricFamily(
            "trialguard_snapshots_restored_total", "Snapshot records read to restore state", m.snapshots_restored
        )
        yield CounterMetricFamily(
            "trialguard_transactions_failed_total",
            "Partition transactions lost (fenced, commit failed, broker gone) and the partition re-opened",
            m.transactions_failed,
        )
        yield CounterMetricFamily(
            "trialguard_partitions_reopened_total",
            "Partitions re-opened after a failed transaction or take-over",
            m.partitions_reopened,
        )
