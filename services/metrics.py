"""Health and Prometheus metrics of the rules service, served over plain HTTP (loopback by default).

    GET /health    200 {"status": "ready"} once every assigned partition is open, else 503 with
                   {"status": "waiting_for_broker"} or {"status": "restoring"}
    GET /metrics   Prometheus text format 0.0.4

A few lines of asyncio instead of a web framework: two read-only endpoints on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("trialguard.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Seconds: batch latency from the first record handled to the transaction committed."""


@dataclass
class Metrics:
    """Counters of one rules service process. consumed = processed + dead_lettered, always."""

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

    def batch_committed(self, processed: int, dead_lettered: int, rule_ids: Iterable[str], seconds: float) -> None:
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

    def render(self, ready: bool) -> str:
        """The Prometheus text exposition of every metric."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: Iterable[tuple[str, float]]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}"])
            lines.extend(f"{name}{labels} {value:g}" for labels, value in samples)

        metric("trialguard_ready", "gauge", "1 once every assigned partition is restored", [("", int(ready))])
        metric("trialguard_events_consumed_total", "counter", "Records consumed from participant-events",
               [("", self.consumed)])  # fmt: skip
        metric(
            "trialguard_events_processed_total", "counter", "Events processed by the protocol", [("", self.processed)]
        )
        metric("trialguard_events_dead_lettered_total", "counter", "Records sent to the dead-letter topic",
               [("", self.dead_lettered)])  # fmt: skip
        metric("trialguard_findings_total", "counter", "Deviations and alerts raised, by rule id",
               [(f'{{rule_id="{rule}"}}', n) for rule, n in sorted(self.findings_by_rule.items())])  # fmt: skip
        metric("trialguard_consumer_lag", "gauge", "Records not yet consumed, by input partition",
               [(f'{{partition="{p}"}}', n) for p, n in sorted(self.lag.items())])  # fmt: skip
        cumulative = [(f'{{le="{bound}"}}', n) for bound, n in zip(LATENCY_BUCKETS, self.latency_buckets, strict=True)]
        lines.extend(["# HELP trialguard_batch_seconds Seconds from a batch's first record to its commit",
                      "# TYPE trialguard_batch_seconds histogram"])  # fmt: skip
        lines.extend(f"trialguard_batch_seconds_bucket{labels} {n}" for labels, n in cumulative)
        lines.append(f'trialguard_batch_seconds_bucket{{le="+Inf"}} {self.latency_count}')
        lines.append(f"trialguard_batch_seconds_sum {self.latency_sum:g}")
        lines.append(f"trialguard_batch_seconds_count {self.latency_count}")
        metric("trialguard_snapshots_restored_total", "counter", "Snapshot records read to restore state",
               [("", self.snapshots_restored)])  # fmt: skip
        metric("trialguard_transactions_failed_total", "counter",
               "Partition transactions lost (fenced, commit failed, broker gone) and the partition re-opened",
               [("", self.transactions_failed)])  # fmt: skip
        metric("trialguard_partitions_reopened_total", "counter",
               "Partitions re-opened after a failed transaction or take-over",
               [("", self.partitions_reopened)])  # fmt: skip
        return "\n".join(lines) + "\n"


async def serve_http(port: int, metrics: Metrics, status: Callable[[], str], host: str = "127.0.0.1") -> asyncio.Server:
    """Serve /health and /metrics on ``host``:``port`` (0 picks a free port). Loopback unless
    told otherwise (a container publishing the port needs 0.0.0.0)."""

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readline(), 5)
            while (await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b"\n", b""):
                pass  # headers: nothing here needs them
            parts = request.split()
            path = parts[1].decode() if len(parts) > 1 else ""
            if path == "/health":
                now = status()
                code = "200 OK" if now == "ready" else "503 Service Unavailable"
                body = json.dumps({"status": now}).encode()
                kind = "application/json"
            elif path == "/metrics":
                code, body, kind = "200 OK", metrics.render(status() == "ready").encode(), "text/plain; version=0.0.4"
            else:
                code, body, kind = "404 Not Found", b"not found: try /health or /metrics\n", "text/plain"
            head = (
                f"HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(respond, host, port)
    log.info("http_listening", address=f"{host}:{server.sockets[0].getsockname()[1]}")
    return server
