"""Live benchmark against the local broker: sustained events/s through the rules service and
through a raw aiokafka transactional pass-through (same batches, no rules) in the same run, their
ratio, two service instances sharing the partitions, p50/p99 event→deviation latency at a steady
1,000 events/s (and of the safety alerts on their own), and the time to restore many participants'
state from the snapshot topic.

    make kafka-up && .venv/bin/python bench/live.py [--events 100000]    (or: make bench-live)

Each run uses topics of its own namespaces, so it never touches the demo's or another run's; they
are deleted at the end (--keep-topics keeps them). Benchmarks print numbers; nothing here fails on
a time. The service's process and metrics are in ``live_service.py``, the latency run in
``live_latency.py``, the restore in ``live_restore.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import logging
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402
from aiokafka.admin import AIOKafkaAdminClient  # noqa: E402
from live_latency import latency, steady_stream  # noqa: E402
from live_restore import restore_benchmark  # noqa: E402
from live_service import (  # noqa: E402
    HISTORY,
    STUDY,
    batches,
    events,
    free_port,
    histogram_quantile,
    http_get,
    phases,
    produce,
    ready,
    scrape,
    start_service,
    stop_service,
    wait_consumed,
)
from replay import machine  # noqa: E402

from services.kafka import (  # noqa: E402
    KafkaSettings,
    ensure_topics,
    partition_ids,
    read_to_end,
    rules_group_id,
)

BATCH = 500  # as the rules service's max_batch


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
    parser.add_argument("--warm-up-seconds", type=float, default=3,
                        help="seconds of the 1,000 events/s run sent before the timed ones (timed apart)")  # fmt: skip
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
            # A warm-up before the timed seconds, at the same rate: the service has just started, on
            # topics just created, and its first second's commits take the broker 20-40 ms
            # (not 4): a steady rate's percentiles are those of the seconds after it.
            length = args.latency_seconds + args.warm_up_seconds
            wanted = round(args.alerts * length / args.latency_seconds)
            steady, natural, added = steady_stream(begin, round(length * 1000), 50, wanted)
            result = await latency(fresh("latency"), steady, 1000, warm_up=args.warm_up_seconds)
            if len(result.findings) >= 2:
                print(f"event→deviation latency at 1,000 events/s: {quantiles_ms(result.findings)} "
                      f"({len(result.findings)} findings)")  # fmt: skip
            if len(result.alerts) >= 2:
                print(f"safety-alert latency at 1,000 events/s: {quantiles_ms(result.alerts)} "
                      f"({len(result.alerts)} alerts; {added} serious adverse events added to the "
                      f"{natural} alerting events of the history, warm-up included)")  # fmt: skip
            warm = sorted(seconds for seconds, _ in result.warm_up)
            if len(warm) >= 2:
                print(f"  (the {args.warm_up_seconds:g} s of warm-up before, not counted above: {quantiles_ms(warm)} "
                      f"over {len(warm)} triggers, the slowest {1000 * warm[-1]:,.0f} ms)")  # fmt: skip
            slowest = sorted(result.slowest, reverse=True)[:5]
            began = datetime.datetime.fromtimestamp(result.started, datetime.UTC).strftime("%H:%M:%S.%f")[:-3]
            print(f"  (the slowest, ms at s into the run, which began at {began} UTC, and [ms until the service "
                  "produced the finding]: "
                  + ", ".join(f"{1000 * ms:,.0f} at {at:.1f} [{1000 * made:,.0f}]{' (alert)' if alert else ''}"
                              for ms, at, alert, made in slowest)
                  + ")")  # fmt: skip
            if result.broker_compiling is not None:
                print(f"  (the broker's JIT compilers ran {1000 * result.broker_compiling:,.0f} ms of CPU during the "
                      f"{result.sending:.0f} s of sending)")  # fmt: skip
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
