"""The notifier's HTTP side: ``/health``, ``/metrics`` (Prometheus) and ``/operations`` (JSON):
deliveries by subscription and state, and the dead letters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from services.http import observability_router
from services.notifier.consumer import FindingsConsumer
from services.notifier.delivery import Deliverer
from services.notifier.store import NotifierStore

STATES = ("pending", "delivered", "dead")


class _Families(Collector):
    def __init__(self, store: NotifierStore, consumers: Sequence[FindingsConsumer], deliverer: Deliverer) -> None:
        self.store, self.consumers, self.deliverer = store, consumers, deliverer

    def collect(self) -> Iterator[Metric]:
        outbox = GaugeMetricFamily(
            "trialguard_notifier_outbox", "Outbox rows by state (dead: dead letters)", labels=["state"]
        )
        totals = dict.fromkeys(STATES, 0)
        for states in self.store.counts().values():
            for state, n in states.items():
                totals[state] += n
        for state in STATES:
            outbox.add_metric([state], totals[state])
        yield outbox
        yield GaugeMetricFamily(
            "trialguard_notifier_dead_letters", "Deliveries given up after the maximum attempts", value=totals["dead"]
        )
        attempts = CounterMetricFamily(
            "trialguard_notifier_attempts", "Delivery attempts since start, by outcome", labels=["outcome"]
        )
        for outcome in ("delivered", "retried", "dead"):
            attempts.add_metric([outcome], self.deliverer.outcomes[outcome])
        yield attempts
        read = CounterMetricFamily(
            "trialguard_notifier_findings_read",
            "Findings read from the deviations topic since start, by study",
            labels=["study"],
        )
        queued = CounterMetricFamily(
            "trialguard_notifier_deliveries_queued", "Outbox rows written since start, by study", labels=["study"]
        )
        for consumer in self.consumers:
            read.add_metric([consumer.settings.study_id], consumer.findings_read)
            queued.add_metric([consumer.settings.study_id], consumer.deliveries_queued)
        yield read
        yield queued


def operations(store: NotifierStore, study_id: str | None = None) -> dict[str, Any]:
    """The operations document: totals, per subscription, and the newest dead letters; of one
    study's subscriptions when ``study_id`` is given (the dashboard asks for the study it shows)."""
    per_subscription = store.counts(study_id)
    totals = dict.fromkeys(STATES, 0)
    for states in per_subscription.values():
        for state, n in states.items():
            totals[state] += n
    return {"totals": totals, "subscriptions": per_subscription, "dead_letters": store.dead_letters(study_id=study_id)}


def create_app(store: NotifierStore, consumers: Sequence[FindingsConsumer], deliverer: Deliverer) -> FastAPI:
    """The app (one consumer per study served; ready once every one is); it listens on loopback
    unless told otherwise (ids only, no clinical values)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(store, consumers, deliverer))
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None, redirect_slashes=False)
    app.include_router(
        observability_router(registry, lambda: "ready" if all(c.ready for c in consumers) else "starting")
    )

    @app.get("/operations")
    def operations_page(study: str | None = None) -> JSONResponse:
        return JSONResponse(operations(store, study))

    return app
