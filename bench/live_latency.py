"""The live benchmark's latency run: a steady stream at a fixed rate, timed to its findings.

``steady_stream`` takes a window of the simulated history and, when it would raise too few
safety alerts, adds serious adverse events; ``latency`` publishes it at a steady rate to a
``rules serve`` process and times each triggering event to the first finding that names it.
Used by ``bench/live.py``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from broker_jit import broker_pid, compiled_between, compiler_cpu
from live_service import events, free_port, ready, scrape, start_service, stop_service, wait_consumed

from contracts import parse_event
from services.kafka import KafkaSettings, ensure_topics, rules_group_id

ALERT_NAMESPACE = uuid.UUID("4f0d8a52-3c1e-4b7a-9a51-6f2d3e9b7c10")
"""uuid5 namespace of the event ids of the adverse events this benchmark adds."""


def alerting(value: bytes) -> bool:
    """Whether the event raises a SafetyAlertRaised: a serious adverse event, CRS or ICANS of
    grade 3 or more, a relapse (protocol/nct06904729/safety.py); its facts are the event's own."""
    event = json.loads(value)
    if event["event_type"] == "RelapseReported":
        return True
    if event["event_type"] != "AdverseEventReported":
        return False
    p = event["payload"]
    return bool(p["serious"]) or (p.get("crs_grade") or 0) >= 3 or (p.get("icans_grade") or 0) >= 3


def adverse_event(n: int, after: dict[str, object]) -> tuple[bytes, bytes]:
    """The ``n``-th added adverse event, of the participant of event ``after``, a minute after it:
    alternately grade 3 CRS (SAFETY-CRS3) and a serious grade 2 pneumonia (SAFETY-SAE)."""
    occurred = dt.datetime.fromisoformat(str(after["occurred_at"])) + dt.timedelta(minutes=1)
    payload = (
        {"term": "Cytokine release syndrome", "ctcae_grade": 3, "serious": False, "crs_grade": 3}
        if n % 2 == 0
        else {"term": "Pneumonia", "ctcae_grade": 2, "serious": True}
    )
    site = str(after["site_id"])
    event = {
        "event_id": str(uuid.uuid5(ALERT_NAMESPACE, f"bench-live-adverse-event-{n}")),
        "event_type": "AdverseEventReported",
        "schema_version": 1,
        "study_id": after["study_id"],
        "site_id": site,
        "participant_id": after["participant_id"],
        "occurred_at": occurred.isoformat(),
        "recorded_at": (occurred + dt.timedelta(hours=2)).isoformat(),
        "source": {"system": f"edc.{site.lower().replace('-', '')}", "actor": "crc-01"},
        "payload": payload,
    }
    value = json.dumps(event, separators=(",", ":")).encode()
    parse_event(value)  # an added event that broke the contract would be dead-lettered, not timed
    return str(after["participant_id"]).encode(), value


def steady_stream(start: int, total: int, min_alerts: int, alerts: int) -> tuple[list[tuple[bytes, bytes]], int, int]:
    """``total`` events of the history from ``start`` for the latency run, the alerts they are
    expected to raise, and how many adverse events were added among them.

    When fewer than ``min_alerts`` alerts are expected, serious adverse events are added, evenly
    spaced, so that about ``alerts`` are raised; the stream keeps its length (the last real events
    make room). Each one follows an event of a participant already infused (by the history up to
    that point) and not withdrawn."""
    history = events(start + total)
    window = history[start:]
    natural = sum(alerting(value) for _, value in window)
    wanted = max(0, alerts - natural) if natural < min_alerts else 0
    if not wanted:
        return window, natural, 0
    infused: set[str] = set()
    for _, value in history[:start]:
        if b'"CarTInfused"' in value:
            infused.add(json.loads(value)["participant_id"])
    every = total / wanted
    out: list[tuple[bytes, bytes]] = []
    added = due = 0
    for key, value in window[: total - wanted]:
        out.append((key, value))
        if b'"CarTInfused"' in value or b'"ParticipantWithdrawn"' in value:
            event = json.loads(value)
            (infused.add if event["event_type"] == "CarTInfused" else infused.discard)(event["participant_id"])
        if (added + due + 1) * every <= len(out) and added + due < wanted:
            due += 1
        if due and key.decode() in infused:
            out.append(adverse_event(added, json.loads(value)))
            added += 1
            due -= 1
    return out, natural, added


@dataclass
class Latencies:
    findings: list[float] = field(default_factory=list)
    """per triggering event, from its publication to the first finding read that names it"""
    alerts: list[float] = field(default_factory=list)
    """the same with SafetyAlertRaised findings only"""
    slowest: list[tuple[float, float, bool, float]] = field(default_factory=list)
    """(latency, seconds into the run the trigger was sent, whether an alert, seconds from its
    sending to the finding's production: the finding record's timestamp, the service's clock at
    its send, which is this machine's) of every timed trigger; the rest of the latency is the
    commit and the read"""
    started: float = 0.0
    """wall-clock time (``time.time()``) the first event was sent, to set the run beside logs"""
    warm_up: list[tuple[float, bool]] = field(default_factory=list)
    """(latency, whether an alert) of the triggers sent during the warm-up, not in the lists above"""
    service: dict[str, float] = field(default_factory=dict)
    """the service's metrics at the end"""
    broker_compiling: float | None = None
    """seconds of CPU the local broker's JIT compilers used while the events were sent (None: the
    broker is not one ``scripts/kafka.sh`` started here)"""
    sending: float = 0.0
    """seconds the events took to send"""


async def latency(
    settings: KafkaSettings, messages: list[tuple[bytes, bytes]], rate: int, warm_up: float = 0.0
) -> Latencies:
    """Seconds from publishing an event to reading the finding it triggered (read_committed),
    with events published at a steady ``rate`` per second; the triggers of the first ``warm_up``
    seconds (a service just started, on topics just created) are kept apart."""
    await ensure_topics(settings)
    port = free_port()
    service = start_service(settings, port)
    sent_at: dict[str, float] = {}
    sent_wall: dict[str, float] = {}
    timed: set[str] = set()
    alerts_timed: set[str] = set()
    result = Latencies()
    consumer = AIOKafkaConsumer(settings.topics.deviations, **settings.client_kwargs(),
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                fetch_max_wait_ms=10)  # fmt: skip
    try:
        await ready(port, service)
        await consumer.start()
        # The upstream's producer as Kafka's own client makes it since 4.0 (linger.ms 5, KIP-1030),
        # as the soak's load does: with linger 0 each of the 1,000 events a second was a produce
        # request of its own, and the broker serving them shared the service's two cores
        # (docs/benchmarks.md, "The load's own produce requests"). Its wait is timed: ``sent_at``
        # is taken before ``send``.
        producer = AIOKafkaProducer(**settings.client_kwargs(), linger_ms=5)
        await producer.start()

        async def read() -> None:
            async for record in consumer:
                now = time.perf_counter()
                finding = json.loads(record.value)
                triggers = [t for t in finding.get("trigger_event_ids", ()) if t in sent_at]
                alert = "alert_id" in finding
                for trigger in triggers:
                    first = trigger not in timed
                    first_alert = alert and trigger not in alerts_timed
                    timed.add(trigger)
                    if alert:
                        alerts_timed.add(trigger)
                    seconds, at = now - sent_at[trigger], sent_at[trigger] - start
                    produced = record.timestamp / 1000 - sent_wall[trigger]
                    if at < warm_up:
                        if first or first_alert:
                            result.warm_up.append((seconds, first_alert))
                        continue
                    if first:
                        result.findings.append(seconds)
                        result.slowest.append((seconds, at, False, produced))
                    if first_alert:
                        result.alerts.append(seconds)
                        result.slowest.append((seconds, at, True, produced))

        reader = asyncio.create_task(read())
        broker = broker_pid(settings.bootstrap_servers)
        compiled = compiler_cpu(broker)
        start, result.started = time.perf_counter(), time.time()
        for i, (key, value) in enumerate(messages):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            event_id = json.loads(value)["event_id"]
            sent_at[event_id], sent_wall[event_id] = time.perf_counter(), time.time()
            await producer.send(settings.topics.participant_events, value, key=key)
        result.sending = time.perf_counter() - start
        if broker is not None:
            result.broker_compiling = compiled_between(compiled, compiler_cpu(broker))
        await producer.stop()
        await wait_consumed(settings, rules_group_id(settings), len(messages))
        await asyncio.sleep(1)  # the last committed findings reach the reader
        reader.cancel()
        result.service = await scrape(port)
        return result
    finally:
        await consumer.stop()
        stop_service(service)
