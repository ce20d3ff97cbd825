"""Live benchmark against the local broker: sustained events/s through the rules service and
through a raw aiokafka transactional pass-through (same batches, no rules) in the same run, their
ratio, two service instances sharing the partitions, p50/p99 event→deviation latency at a steady
1,000 events/s (and of the safety alerts on their own), and the time to restore many participants'
state from the snapshot topic.

    make kafka-up && .venv/bin/python bench/live.py [--events 100000]    (or: make bench-live)

Each run uses topics of its own namespaces, so it never touches the demo's or another run's; they
are deleted at the end (--keep-topics keeps them). Benchmarks print numbers; nothing here fails on
a time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from live_restore import restore_benchmark  # noqa: E402
from replay import machine  # noqa: E402

from contracts import parse_event  # noqa: E402
from services.kafka import (  # noqa: E402
    KafkaSettings,
    ensure_topics,
    group_lag,
    partition_ids,
    read_to_end,
    rules_group_id,
)

HISTORY = ROOT / ".cache" / "bench" / "history-1000000-seed7.jsonl"
BATCH = 500  # as the rules service's max_batch
STUDY = "NCT06904729"


def events(n: int) -> list[tuple[bytes, bytes]]:
    """The first ``n`` events of the replay benchmark's simulated history, keyed by participant."""
    if not HISTORY.exists():
        subprocess.run(
            [sys.executable, "bench/replay.py", "--events", "1000000", "--repeat", "0"], cwd=ROOT, check=False
        )
    with HISTORY.open("rb") as f:
        lines = [line.rstrip(b"\n") for line in islice(f, n)]
    return [(json.loads(line)["participant_id"].encode(), line) for line in lines]


async def produce(settings: KafkaSettings, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", linger_ms=20,
                                max_batch_size=256 * 1024)  # fmt: skip
    await producer.start()
    try:
        for key, value in messages:
            await producer.send(settings.topics.participant_events, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def wait_consumed(settings: KafkaSettings, group: str, total: int) -> None:
    while True:
        lag = await group_lag(settings, group)
        if lag is not None and not any(lag.values()):
            return
        await asyncio.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def http_get(port: int, path: str) -> tuple[bool, bytes]:
    """(status 200, body) of a GET on the service's HTTP port."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        response = await reader.read()
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return b" 200 " in head.split(b"\r\n", 1)[0] + b" ", body


async def ready(port: int, process: subprocess.Popen[bytes] | None = None) -> None:
    while True:
        if process is not None and process.poll() is not None:
            raise SystemExit(f"the rules service exited with {process.returncode} before it was ready")
        try:
            if (await http_get(port, "/health"))[0]:
                return
        except OSError:
            pass
        await asyncio.sleep(0.05)


async def scrape(port: int) -> dict[str, float]:
    """The service's metrics (Prometheus text), by series name with its labels."""
    _, body = await http_get(port, "/metrics")
    series = {}
    label = f'study="{STUDY}"'
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            if "study=" in name and label not in name:
                continue  # another study's series (`rules serve` labels each with its study)
            name = name.replace(f",{label}", "").replace(f"{label},", "").replace(f"{{{label}}}", "")
            series[name] = float(value)
    return series


def batches(metrics: dict[str, float]) -> str:
    """What the service's batch histogram says: transactions, their size, their time."""
    count = metrics.get("trialguard_batch_seconds_count", 0.0)
    if not count:
        return "no transactions"
    mean = metrics["trialguard_batch_seconds_sum"] / count
    bounds = sorted(
        (float(name.split('le="')[1].rstrip('"}')), n)
        for name, n in metrics.items()
        if name.startswith("trialguard_batch_seconds_bucket") and "+Inf" not in name
    )
    p99 = next((f"≤ {bound * 1000:,.0f} ms" for bound, n in bounds if n >= 0.99 * count), "> 5 s")
    events = metrics.get("trialguard_events_processed_total", 0.0)
    return (f"{count:,.0f} transactions of {events / count:,.1f} events on average, {mean * 1000:,.0f} ms each "
            f"from the batch's first record to its commit (99 % {p99})")  # fmt: skip


def histogram_quantile(metrics: dict[str, float], name: str, q: float, labels: str = "") -> float | None:
    """The ``q`` quantile (0..1) of a Prometheus histogram in ``metrics``, interpolated linearly
    within its bucket (as PromQL's histogram_quantile does); None without observations."""
    buckets = []
    for key, n in metrics.items():
        if not key.startswith(f"{name}_bucket{{") or (labels and labels not in key):
            continue
        le = key.split('le="')[1].split('"')[0]
        buckets.append((float("inf") if le == "+Inf" else float(le), n))
    buckets.sort()
    if not buckets or not buckets[-1][1]:
        return None
    rank = q * buckets[-1][1]
    below, seen = 0.0, 0.0
    for bound, n in buckets:
        if n >= rank:
            if bound == float("inf"):
                return below
            return below + (bound - below) * (rank - seen) / max(n - seen, 1e-9)  # may pass the largest seen
        below, seen = bound, n
    return below


def phases(metrics: dict[str, float]) -> str:
    """p99 of each timed phase of the service's transactions, the event loop's lag and full
    garbage collections (services/rules/timing.py), in milliseconds."""
    parts = []
    for phase in ("poll", "fold", "wait", "send", "round", "commit"):
        p99 = histogram_quantile(metrics, "trialguard_phase_seconds", 0.99, f'phase="{phase}"')
        largest = metrics.get(f'trialguard_phase_seconds_max{{phase="{phase}"}}', 0.0)
        if p99 is not None:
            parts.append(f"{phase} {min(p99, largest) * 1000:,.0f} (max {largest * 1000:,.0f})")
    lag = histogram_quantile(metrics, "trialguard_event_loop_lag_seconds", 0.99)
    if lag is not None:
        parts.append(f"event-loop lag {lag * 1000:,.0f}")
    gcs = metrics.get("trialguard_gc_full_seconds_count", 0.0)
    if gcs:
        parts.append(f"{gcs:,.0f} full GCs of {metrics['trialguard_gc_full_seconds_sum'] / gcs * 1000:,.0f} on average")
    return "p99 by phase, ms: " + ", ".join(parts)


def start_service(settings: KafkaSettings, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "warning", "rules", "serve",
         "--bootstrap-servers", settings.bootstrap_servers, "--study", STUDY, "--namespace", settings.namespace,
         "--http-port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stop_service(service: subprocess.Popen[bytes]) -> None:
    service.terminate()
    service.wait()


async def through_service(settings: KafkaSettings, messages: list[tuple[bytes, bytes]]) -> float:
    """events/s of the rules service over a preloaded topic, from ready to fully consumed."""
    await ensure_topics(settings)
    await produce(settings, messages)
    port = free_port()
    service = start_service(settings, port)
    try:
        await ready(port, service)
        start = time.perf_counter()
        await wait_consumed(settings, rules_group_id(settings), len(messages))
        return len(messages) / (time.perf_counter() - start)
    finally:
        stop_service(service)


@dataclass
class Instances:
    rate: float
    processed: list[int] = field(default_factory=list)
    """events each instance processed"""


async def through_instances(settings: KafkaSettings, messages: list[tuple[bytes, bytes]], count: int) -> Instances:
    """events/s of ``count`` rules-service processes in one group over a preloaded topic, from the
    commit of its events to fully consumed. The events are preloaded in one open transaction,
    committed once every instance is ready: the group has then given each its partitions, and
    none could read any event before (read_committed), so the one that joined first has no head
    start, and no restore or group join is timed."""
    await ensure_topics(settings)
    producer = AIOKafkaProducer(**settings.client_kwargs(), linger_ms=20, max_batch_size=256 * 1024,
                                transactional_id=f"{settings.namespace}.preload", enable_idempotence=True,
                                transaction_timeout_ms=600_000)  # fmt: skip
    await producer.start()
    ports = [free_port() for _ in range(count)]
    services: list[subprocess.Popen[bytes]] = []
    try:
        await producer.begin_transaction()
        for key, value in messages:
            await producer.send(settings.topics.participant_events, value, key=key)
        await producer.flush()
        services = [start_service(settings, port) for port in ports]
        while True:  # all at once: the first may be re-opening its partitions after the next joined
            await asyncio.gather(*(ready(port) for port in ports))
            if all([(await http_get(port, "/health"))[0] for port in ports]):
                break
        start = time.perf_counter()
        await producer.commit_transaction()
        await wait_consumed(settings, rules_group_id(settings), len(messages))
        rate = len(messages) / (time.perf_counter() - start)
        return Instances(
            rate, [int((await scrape(port)).get("trialguard_events_processed_total", 0)) for port in ports]
        )
    finally:
        await producer.stop()
        for service in services:
            stop_service(service)


async def findings(settings: KafkaSettings) -> Counter[tuple[str, ...]]:
    """The findings on the deviations topic (read_committed), counted by identity: a finding's id,
    or a supersession's finding id and correction. Records that are no findings are left out."""
    found: Counter[tuple[str, ...]] = Counter()
    async for record in read_to_end(settings, settings.topics.deviations):
        body = json.loads(record.value or b"{}")
        if "deviation_id" in body or "alert_id" in body:
            found[(body.get("deviation_id") or body["alert_id"],)] += 1
        elif body.get("event_type") == "FindingSuperseded":
            found[(body["finding_id"], body["superseded_by_event_id"])] += 1
    return found


async def through_pass_through(settings: KafkaSettings, total: int) -> float:
    """events/s of a raw transactional consume→produce loop over the same topic: per partition
    and batch one transaction with the records copied to an output topic and the offsets."""
    group = f"{settings.namespace}.passthrough"
    topic = settings.topics.participant_events
    consumer = AIOKafkaConsumer(topic, **settings.client_kwargs(), group_id=group,
                                enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest", max_poll_records=BATCH)  # fmt: skip
    producers: dict[int, AIOKafkaProducer] = {}
    for p in await partition_ids(settings, topic):
        producers[p] = AIOKafkaProducer(**settings.client_kwargs(), linger_ms=5,
                                        transactional_id=f"{group}.p{p}", enable_idempotence=True)  # fmt: skip
        await producers[p].start()
    await consumer.start()
    done = 0
    start = None

    async def commit(tp: TopicPartition, records: list) -> None:  # type: ignore[type-arg]
        producer = producers[tp.partition]
        async with producer.transaction():
            for r in records:
                await producer.send(settings.topics.deviations, r.value, key=r.key)
            await producer.send_offsets_to_transaction({tp: records[-1].offset + 1}, group)

    try:
        while done < total:
            batch = await consumer.getmany(timeout_ms=200, max_records=BATCH)
            if batch and start is None:
                start = time.perf_counter()
            await asyncio.gather(*(commit(tp, records) for tp, records in batch.items()))
            done += sum(len(r) for r in batch.values())
        return total / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()
        for producer in producers.values():
            await producer.stop()


# --- the steady stream of the latency run ------------------------------------------------------

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
    service: dict[str, float] = field(default_factory=dict)
    """the service's metrics at the end"""


async def latency(settings: KafkaSettings, messages: list[tuple[bytes, bytes]], rate: int) -> Latencies:
    """Seconds from publishing an event to reading the finding it triggered (read_committed),
    with events published at a steady ``rate`` per second."""
    await ensure_topics(settings)
    port = free_port()
    service = start_service(settings, port)
    sent_at: dict[str, float] = {}
    timed: set[str] = set()
    alerts_timed: set[str] = set()
    result = Latencies()
    consumer = AIOKafkaConsumer(settings.topics.deviations, **settings.client_kwargs(),
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                fetch_max_wait_ms=10)  # fmt: skip
    try:
        await ready(port, service)
        await consumer.start()
        producer = AIOKafkaProducer(**settings.client_kwargs(), linger_ms=0)
        await producer.start()

        async def read() -> None:
            async for record in consumer:
                now = time.perf_counter()
                finding = json.loads(record.value)
                triggers = [t for t in finding.get("trigger_event_ids", ()) if t in sent_at]
                for trigger in triggers:
                    if trigger not in timed:
                        timed.add(trigger)
                        result.findings.append(now - sent_at[trigger])
                if "alert_id" in finding:
                    for trigger in triggers:
                        if trigger not in alerts_timed:
                            alerts_timed.add(trigger)
                            result.alerts.append(now - sent_at[trigger])

        reader = asyncio.create_task(read())
        start = time.perf_counter()
        for i, (key, value) in enumerate(messages):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            sent_at[json.loads(value)["event_id"]] = time.perf_counter()
            await producer.send(settings.topics.participant_events, value, key=key)
        await producer.stop()
        await wait_consumed(settings, rules_group_id(settings), len(messages))
        await asyncio.sleep(1)  # the last committed findings reach the reader
        reader.cancel()
        result.service = await scrape(port)
        return result
    finally:
        await consumer.stop()
        stop_service(service)


def namespace(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


async def drop_topics(bootstrap_servers: str, namespaces: list[str]) -> None:
    """Delete the topics of this run's namespaces (the restore alone writes a gigabyte or so)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if any(t.startswith(f"{ns}.") for ns in namespaces)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


def quantiles_ms(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=100)
    return f"p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput passes")
    parser.add_argument("--latency-seconds", type=int, default=30, help="length of the 1,000 events/s run")
    parser.add_argument("--alerts", type=int, default=120,
                        help="safety alerts to aim for in the latency run, by adding serious adverse events when "
                             "the history gives fewer than 50 (0: add none)")  # fmt: skip
    parser.add_argument("--restore-participants", type=int, default=100_000, help="snapshots to restore")
    parser.add_argument("--restore-history-events", type=int, default=200_000,
                        help="history events replayed for the real states the snapshots copy")  # fmt: skip
    parser.add_argument("--restore-concurrent", action="store_true",
                        help="also restore all partitions at once (holds all states, ~50 KiB each)")  # fmt: skip
    parser.add_argument("--skip-throughput", action="store_true", help="no service, pass-through or two-instance run")
    parser.add_argument("--skip-two-instances", action="store_true", help="no two-instance run")
    parser.add_argument("--skip-latency", action="store_true", help="no 1,000 events/s run")
    parser.add_argument("--skip-restore", action="store_true", help="no restore from snapshots")
    parser.add_argument("--keep-topics", action="store_true", help="leave this run's topics on the broker")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("TRIALGUARD_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    args = parser.parse_args()
    # aiokafka retries a produce to a topic it has just created ("NotLeaderForPartitionError ... retrying"):
    # only errors are worth printing among the numbers.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    bootstrap = args.bootstrap_servers
    used: list[str] = []

    def fresh(kind: str) -> KafkaSettings:
        used.append(namespace(kind))
        return KafkaSettings(bootstrap, STUDY, used[-1])

    print(f"machine: {machine()}")
    try:
        if not args.skip_throughput:
            messages = events(args.events)
            settings = fresh("live")
            service_rate = await through_service(settings, messages)
            over = f"over {len(messages):,} events"
            print(f"rules service (end to end, exactly once): {service_rate:>9,.0f} events/s {over}")
            committed = (await through_instances(fresh("one"), messages, 1)).rate
            print(f"rules service, timed from the commit of its events: {committed:>9,.0f} events/s {over}"
                  " (as the two-instance pass)")  # fmt: skip
            one = await findings(settings)
            raw_rate = await through_pass_through(settings, len(messages))
            print(f"raw aiokafka transactional pass-through:  {raw_rate:>9,.0f} events/s")
            print(f"ratio (service / pass-through): {service_rate / raw_rate:.2f}")
        if not args.skip_latency:
            begin = 2 * args.events
            steady, natural, added = steady_stream(begin, args.latency_seconds * 1000, 50, args.alerts)
            result = await latency(fresh("latency"), steady, 1000)
            if len(result.findings) >= 2:
                print(f"event→deviation latency at 1,000 events/s: {quantiles_ms(result.findings)} "
                      f"({len(result.findings)} findings)")  # fmt: skip
            if len(result.alerts) >= 2:
                print(f"safety-alert latency at 1,000 events/s: {quantiles_ms(result.alerts)} "
                      f"({len(result.alerts)} alerts; {added} serious adverse events added to the "
                      f"{natural} alerting events of the history)")  # fmt: skip
            print(f"  (service side: {batches(result.service)})")
            p99 = histogram_quantile(result.service, "trialguard_phase_seconds", 0.99, 'phase="transaction"')
            if p99 is not None:
                p99 = min(p99, result.service.get('trialguard_phase_seconds_max{phase="transaction"}', p99))
                print(f"transactions at 1,000 events/s: p99 {p99 * 1000:,.0f} ms from a batch's first record to its "
                      f"commit")  # fmt: skip
            print(f"  ({phases(result.service)})")
        if not args.skip_throughput and not args.skip_two_instances:
            shared = fresh("two")
            two = await through_instances(shared, messages, 2)
            both = await findings(shared)
            shares = " + ".join(f"{n:,}" for n in two.processed)
            print(f"two rules-service instances, one group (end to end, exactly once): {two.rate:>9,.0f} events/s "
                  f"over {len(messages):,} events (processed {shares})")  # fmt: skip
            print(f"ratio (two instances / one): {two.rate / service_rate:.2f}")
            print(f"ratio (two instances / one, both timed from the commit): {two.rate / committed:.2f}")
            duplicates = sum(n - 1 for n in both.values() if n > 1)
            missing = sum(1 for key in one if key not in both)
            extra = sum(1 for key in both if key not in one)
            verdict = "the same findings" if both == one else "NOT the same findings"
            print(f"findings with two instances: {sum(both.values()):,}, with one: {sum(one.values()):,} ({verdict}: "
                  f"{duplicates} duplicates, {missing} missing, {extra} not raised by one)")  # fmt: skip
        if not args.skip_restore:
            await restore_benchmark(fresh("restore"), HISTORY, args.restore_participants,
                                    args.restore_history_events, concurrent=args.restore_concurrent)  # fmt: skip
    finally:
        if not args.keep_topics:
            try:
                await drop_topics(bootstrap, used)
            except Exception as e:  # the broker gone: say so, and let the run's own error (if any) show
                print(f"the topics of {', '.join(used)} were not deleted: {type(e).__name__}: {e}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
