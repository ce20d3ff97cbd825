"""Live benchmark against the local broker: sustained events/s through the rules service and
through a raw aiokafka transactional pass-through (same batches, no rules) in the same run, their
ratio, and p50/p99 event→deviation latency at a steady 1,000 events/s.

    make kafka-up && .venv/bin/python bench/live.py [--events 100000]    (or: make bench-live)

Each run uses topics of its own namespace, so it never touches the demo's or another run's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from itertools import islice
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition  # noqa: E402

from services.kafka import KafkaSettings, ensure_topics, group_lag, partition_ids  # noqa: E402
from services.rules import rules_group_id  # noqa: E402

HISTORY = ROOT / ".cache" / "bench" / "history-1000000-seed7.jsonl"
BATCH = 500  # as the rules service's max_batch


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
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all", linger_ms=20,
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


async def ready(port: int) -> None:
    while True:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            if b" 200 " in (await reader.read()).split(b"\r\n", 1)[0] + b" ":
                writer.close()
                return
            writer.close()
        except OSError:
            pass
        await asyncio.sleep(0.05)


def start_service(settings: KafkaSettings, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "--log-level", "warning", "rules", "serve",
         "--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace,
         "--http-port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def through_service(settings: KafkaSettings, messages: list[tuple[bytes, bytes]]) -> float:
    """events/s of the rules service over a preloaded topic, from ready to fully consumed."""
    await ensure_topics(settings)
    await produce(settings, messages)
    port = free_port()
    service = start_service(settings, port)
    try:
        await ready(port)
        start = time.perf_counter()
        await wait_consumed(settings, rules_group_id(settings), len(messages))
        return len(messages) / (time.perf_counter() - start)
    finally:
        service.terminate()
        service.wait()


async def through_pass_through(settings: KafkaSettings, total: int) -> float:
    """events/s of a raw transactional consume→produce loop over the same topic: per partition
    and batch one transaction with the records copied to an output topic and the offsets."""
    group = f"{settings.namespace}.passthrough"
    topic = settings.topics.participant_events
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers, group_id=group,
                                enable_auto_commit=False, isolation_level="read_committed",
                                auto_offset_reset="earliest", max_poll_records=BATCH)  # fmt: skip
    producers: dict[int, AIOKafkaProducer] = {}
    for p in await partition_ids(settings.bootstrap_servers, topic):
        producers[p] = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=5,
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


async def latency(settings: KafkaSettings, messages: list[tuple[bytes, bytes]], rate: int) -> list[float]:
    """Seconds from publishing an event to reading the finding it triggered (read_committed),
    with events published at a steady ``rate`` per second."""
    await ensure_topics(settings)
    port = free_port()
    service = start_service(settings, port)
    sent_at: dict[str, float] = {}
    samples: list[float] = []
    consumer = AIOKafkaConsumer(settings.topics.deviations, bootstrap_servers=settings.bootstrap_servers,
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                fetch_max_wait_ms=10)  # fmt: skip
    try:
        await ready(port)
        await consumer.start()
        producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, linger_ms=0)
        await producer.start()

        async def read() -> None:
            async for record in consumer:
                finding = json.loads(record.value)
                for trigger in finding["trigger_event_ids"]:
                    if trigger in sent_at:
                        samples.append(time.perf_counter() - sent_at.pop(trigger))

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
        return samples
    finally:
        await consumer.stop()
        service.terminate()
        service.wait()


def namespace(kind: str) -> str:
    return f"bench-{kind}-{uuid.uuid4().hex[:8]}"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput passes")
    parser.add_argument("--latency-seconds", type=int, default=30, help="length of the 1,000 events/s run")
    parser.add_argument("--bootstrap-servers", default=os.environ.get("TRIALGUARD_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    args = parser.parse_args()
    messages = events(args.events)
    settings = KafkaSettings(args.bootstrap_servers, "NCT06904729", namespace("live"))
    service_rate = await through_service(settings, messages)
    print(f"rules service (end to end, exactly once): {service_rate:>9,.0f} events/s over {len(messages):,} events")
    raw_rate = await through_pass_through(settings, len(messages))
    print(f"raw aiokafka transactional pass-through:  {raw_rate:>9,.0f} events/s")
    print(f"ratio (service / pass-through): {service_rate / raw_rate:.2f}")
    steady = events(args.latency_seconds * 1000 + 2 * args.events)[2 * args.events :]
    samples = await latency(KafkaSettings(args.bootstrap_servers, "NCT06904729", namespace("latency")), steady, 1000)
    if samples:
        q = statistics.quantiles(samples, n=100)
        print(f"event→deviation latency at 1,000 events/s: p50 {q[49] * 1000:.0f} ms, p99 {q[98] * 1000:.0f} ms "
              f"({len(samples)} findings)")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
