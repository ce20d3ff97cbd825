"""The gateway's Prometheus metrics, on a registry of its own (several gateways may share a test
process; nothing touches prometheus_client's global registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

PUBLISH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds from a request's transaction begun to committed (Kafka acknowledged every event)."""


class GatewayMetrics:
    """Requests by endpoint and status, rejections by reason, events published, publish latency.

    Attributes:
        registry: exposed on /metrics.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "trialguard_gateway_requests",
            "HTTP requests, by endpoint (route template) and status code",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "trialguard_gateway_rejections",
            "Requests refused, by reason (unauthenticated, too_large, contract, site, study, "
            "unregistered, not_a_source_event, unsupported_media_type, unavailable, publish_failed)",
            ["reason"],
            registry=self.registry,
        )
        self.results_not_used = Counter(
            "trialguard_gateway_results_not_used",
            "Lab results received and not published because the study does not use them (format: fhir, hl7v2)",
            ["format"],
            registry=self.registry,
        )
        self.events_published = Counter(
            "trialguard_gateway_events_published",
            "Events published (committed) to participant-events",
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "trialguard_gateway_publish_seconds",
            "Seconds to publish one request's events in one Kafka transaction (begin to commit)",
            buckets=PUBLISH_BUCKETS,
            registry=self.registry,
        )
