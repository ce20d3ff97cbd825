"""/health and /metrics: the router any app includes, the rules service's server, the exposition.

The router is driven as a plain ASGI app (no HTTP client library needed); ``serve_http`` is driven
over a real socket, as a probe or a scraper would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
import structlog
from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from services.http import observability_app, observability_router, serve_asgi, serve_http
from services.metrics import LATENCY_BUCKETS, Metrics

# Every family the rules service exposes: name → (type, help, label names of its samples).
FAMILIES = {
    "trialguard_ready": ("gauge", "1 once every assigned partition is restored", set()),
    "trialguard_events_consumed": ("counter", "Records consumed from participant-events", set()),
    "trialguard_events_processed": ("counter", "Events processed by the protocol", set()),
    "trialguard_events_dead_lettered": ("counter", "Records sent to the dead-letter topic", set()),
    "trialguard_findings": ("counter", "Deviations and alerts raised, by rule id", {"rule_id"}),
    "trialguard_event_outcomes": (
        "counter",
        "Events of note by outcome: correction_unmatched (named no kept result), "
        "participant_state_full (dead-lettered: the participant's state is at its bound)",
        {"outcome"},
    ),
    "trialguard_consumer_lag": ("gauge", "Records not yet consumed, by input partition", {"partition"}),
    "trialguard_participants": (
        "gauge",
        "Participants of the assigned partitions: decoded in memory (worked on since the last snapshot round) "
        "or at rest on local disk",
        {"where"},
    ),
    "trialguard_batch_seconds": ("histogram", "Seconds from a batch's first record to its commit", set()),
    "trialguard_snapshots_restored": ("counter", "Snapshot records read to restore state", set()),
    "trialguard_transactions_failed": (
        "counter",
        "Partition transactions lost (fenced, commit failed, broker gone) and the partition re-opened",
        set(),
    ),
    "trialguard_partitions_reopened": (
        "counter",
        "Partitions re-opened after a failed transaction or take-over",
        set(),
    ),
}


def busy_metrics() -> Metrics:
    metrics = Metrics(ready=lambda: True)
    metrics.batch_committed(3, 1, ["CONSENT-01", "SEQ-01", "CONSENT-01"], 0.3, Counter(correction_unmatched=2))
    metrics.lag = {0: 5, 1: 0}
    metrics.restored(7, 0.1)
    metrics.transactions_failed += 2
    metrics.partitions_reopened += 1
    return metrics


async def asgi_get(app: Any, path: str) -> tuple[int, dict[str, str], str]:
    """One GET through an ASGI app: (status, headers, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body.decode()


async def socket_get(port: int, path: str) -> tuple[int, str, str]:
    """A GET over TCP that reads to EOF, as the integration tests' probe does: (status, head, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    response = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = response.decode().partition("\r\n\r\n")
    return int(head.split()[1]), head, body


# --- the router ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"), [("ready", 200), ("restoring", 503), ("waiting_for_broker", 503)]
)  # fmt: skip
async def test_health_is_200_only_when_ready(status: str, code: int) -> None:
    app = observability_app(Metrics().registry, lambda: status)
    got, headers, body = await asgi_get(app, "/health")
    assert (got, json.loads(body)) == (code, {"status": status})
    assert headers["content-type"] == "application/json"


async def test_metrics_are_the_registry_in_prometheus_text_format() -> None:
    app = observability_app(busy_metrics().registry, lambda: "ready")
    code, headers, body = await asgi_get(app, "/metrics")
    assert code == 200
    assert headers["content-type"] == CONTENT_TYPE_LATEST
    assert "trialguard_events_consumed_total 4.0\n" in body
    assert 'trialguard_findings_total{rule_id="CONSENT-01"} 2.0\n' in body


@pytest.mark.parametrize("path", ["/", "/nope", "/docs", "/openapi.json", "/redoc", "/health/"])
async def test_any_other_path_is_404(path: str) -> None:
    code, _, _ = await asgi_get(observability_app(Metrics().registry, lambda: "ready"), path)
    assert code == 404


async def test_the_router_serves_the_same_routes_inside_another_app() -> None:
    app = FastAPI()

    @app.get("/")
    def home() -> dict[str, str]:
        return {"page": "home"}

    app.include_router(observability_router(busy_metrics().registry, lambda: "restoring"))
    assert (await asgi_get(app, "/health"))[0] == 503
    assert "trialguard_ready 1.0" in (await asgi_get(app, "/metrics"))[2]
    assert (await asgi_get(app, "/"))[0] == 200
    assert "/health" not in json.dumps(app.openapi()), "the probes stay out of the app's API schema"


# --- the exposition --------------------------------------------------------------------------


def test_every_family_keeps_its_name_type_help_and_labels() -> None:
    text = generate_latest(busy_metrics().registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {name: (f.type, f.documentation) for name, f in families.items()} == {
        name: (kind, help_) for name, (kind, help_, _) in FAMILIES.items()
    }
    for name, (_, _, labels) in FAMILIES.items():
        for sample in families[name].samples:
            assert set(sample.labels) == (labels if sample.name != name + "_bucket" else {"le"}), sample
    assert not any(line.split(" ")[0].split("{")[0].endswith("_created") for line in text.splitlines())


def test_the_values_are_the_counters_now() -> None:
    metrics = busy_metrics()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in f.samples
    }
    assert samples[("trialguard_ready", ())] == 1
    assert samples[("trialguard_events_consumed_total", ())] == 4
    assert samples[("trialguard_events_processed_total", ())] == 3
    assert samples[("trialguard_events_dead_lettered_total", ())] == 1
    assert samples[("trialguard_findings_total", (("rule_id", "CONSENT-01"),))] == 2
    assert samples[("trialguard_findings_total", (("rule_id", "SEQ-01"),))] == 1
    assert samples[("trialguard_event_outcomes_total", (("outcome", "correction_unmatched"),))] == 2
    assert samples[("trialguard_consumer_lag", (("partition", "0"),))] == 5
    assert samples[("trialguard_consumer_lag", (("partition", "1"),))] == 0
    assert samples[("trialguard_batch_seconds_bucket", (("le", "0.25"),))] == 0
    assert samples[("trialguard_batch_seconds_bucket", (("le", "0.5"),))] == 1
    assert samples[("trialguard_batch_seconds_bucket", (("le", "+Inf"),))] == 1
    assert samples[("trialguard_batch_seconds_count", ())] == 1
    assert samples[("trialguard_batch_seconds_sum", ())] == pytest.approx(0.3)
    assert samples[("trialguard_snapshots_restored_total", ())] == 7
    assert samples[("trialguard_transactions_failed_total", ())] == 2
    assert samples[("trialguard_partitions_reopened_total", ())] == 1
    buckets = [k[1][0][1] for k in samples if k[0] == "trialguard_batch_seconds_bucket"]
    assert buckets == [str(b) for b in LATENCY_BUCKETS] + ["+Inf"]

    metrics.transactions_failed += 1
    assert "trialguard_transactions_failed_total 3.0" in generate_latest(metrics.registry).decode()


def test_each_instance_has_its_own_registry_and_the_global_one_is_untouched() -> None:
    one, other = busy_metrics(), Metrics()
    assert "trialguard_events_consumed_total 4.0" in generate_latest(one.registry).decode()
    assert "trialguard_events_consumed_total 0.0" in generate_latest(other.registry).decode()
    assert "trialguard_ready 0.0" in generate_latest(other.registry).decode(), "not ready until a service says so"
    assert "trialguard_" not in generate_latest(REGISTRY).decode()


# --- the server of the rules service ---------------------------------------------------------


async def test_serve_http_on_a_free_port_answers_and_stops() -> None:
    status = "restoring"
    http = await serve_http(0, busy_metrics().registry, lambda: status)
    try:
        assert http.port == http.sockets[0].getsockname()[1] > 0
        code, head, body = await socket_get(http.port, "/health")
        assert (code, json.loads(body)) == (503, {"status": "restoring"})
        assert "connection: close" in head.lower(), "one request per connection: a probe reads to EOF"
        status = "ready"
        assert (await socket_get(http.port, "/health"))[0] == 200
        code, head, body = await socket_get(http.port, "/metrics")
        assert code == 200
        assert f"content-type: {CONTENT_TYPE_LATEST}" in head.lower()
        assert "trialguard_events_dead_lettered_total 1.0" in body
        assert (await socket_get(http.port, "/nope"))[0] == 404
    finally:
        await http.stop()
    with pytest.raises(ConnectionRefusedError):
        await socket_get(http.port, "/health")


async def test_serve_http_leaves_the_signal_handlers_to_the_process() -> None:
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    try:
        ours = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
        http = await serve_http(0, Metrics().registry, lambda: "ready")
        try:
            assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == ours
            signal.raise_signal(signal.SIGTERM)
            await asyncio.wait_for(stopped.wait(), 5)
            assert (await socket_get(http.port, "/health"))[0] == 200, "HTTP goes on until the process stops it"
        finally:
            await http.stop()
        assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == ours
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def test_an_address_in_use_raises_oserror_before_serving() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError, match="in use"):
            await serve_http(taken.getsockname()[1], Metrics().registry, lambda: "ready")


async def test_uvicorn_logs_go_through_structlog_without_request_data() -> None:
    http = await serve_http(0, Metrics().registry, lambda: "ready")
    try:
        with structlog.testing.capture_logs() as logs:
            reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
            writer.write(b"GET /health?secret=E-03 HTTP/1.1\r\n\r\n")  # no Host: h11 refuses it
            assert b" 400 " in await asyncio.wait_for(reader.read(), 5)
            writer.close()
    finally:
        await http.stop()
    assert logs, "uvicorn's warning reached structlog"
    assert all(entry["logger"].startswith("uvicorn") for entry in logs)
    assert "E-03" not in repr(logs)


async def test_serve_asgi_runs_an_app_with_its_lifespan_and_keeps_connections_open() -> None:
    started: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started.append("up")
        yield

    app = FastAPI(lifespan=lifespan)
    app.include_router(observability_router(Metrics().registry, lambda: "ready"))
    http = await serve_asgi(app, "127.0.0.1", 0, lifespan="on")
    try:
        assert started == ["up"], "listening only once the app has started"
        reader, writer = await asyncio.open_connection("127.0.0.1", http.port)
        for _ in range(2):  # keep-alive: two requests on one connection
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200 ")
            assert b"connection: close" not in head.lower()
            await reader.readexactly(int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0]))
        writer.close()
        assert not http.task.done()
    finally:
        await http.stop()
    assert http.task.done()


async def test_a_failed_startup_is_an_exception_not_an_exit() -> None:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        raise RuntimeError("no database")
        yield  # pragma: no cover

    with pytest.raises(RuntimeError, match="could not start"):
        await serve_asgi(FastAPI(lifespan=lifespan), "127.0.0.1", 0, lifespan="on")
