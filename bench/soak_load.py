"""The soak run's load: a simulated cohort sent at a steady rate, and the findings it triggers.

``cohort`` makes the events (``trialguard simulate``) and orders them as a trial would receive
them: participants arriving one after another, each going through its journey among a steady
number of others, ``drive`` sends them (lab results to the gateway as NDJSON, the rest straight to Kafka, what failed
again), and ``watch_findings`` times each first finding naming a trigger. Used by ``bench/soak.py``.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from services.kafka import KafkaSettings

ROOT = Path(__file__).resolve().parents[1]
EVENTS_PER_PARTICIPANT = 100  # about 110 in the simulator's cohorts: a margin
ACTIVE = 600
"""Participants in their journey at any time of the load (fewer for a short run)."""
GATEWAY_EVERY = 0.1
"""Seconds between two NDJSON requests of a site to the gateway."""


@dataclass(frozen=True, slots=True)
class Sent:
    """One event of the load, with what the generator needs of it (not the parsed event: a
    30-minute load is a few hundred thousand of them)."""

    participant_id: str
    line: bytes
    event_id: str
    site_id: str
    lab: bool
    """A lab result (source ``lis.*``): sent through the gateway."""


def cohort(folder: Path, events: int, seed: int) -> list[Sent]:
    """``events`` events of a simulated cohort, in a steady mix: participant k arrives at step k
    and sends its j-th event at step k + j * spacing, so that about ``ACTIVE`` participants are in
    their journey at any time, in every phase of it (each participant's own order kept).

    Why not round-robin over the whole cohort: every participant would then be in the same phase
    at once (all screening for minutes, then all enrolling), so what the service does, the findings
    it raises and the state it holds would change with the minute, and no two minutes compare.
    Here, once the first participants have finished (a few minutes), each minute is like the next.
    """
    participants = events // EVENTS_PER_PARTICIPANT + 10
    out = folder / f"cohort-{participants}-{seed}.jsonl"
    subprocess.run([sys.executable, "-m", "services.cli", "simulate", "--participants", str(participants),
                    "--seed", str(seed), "--out", str(out)], cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    by_participant: dict[str, list[Sent]] = defaultdict(list)
    with out.open("rb") as lines:
        for line in lines:
            e = json.loads(line)
            pid = e["participant_id"]
            lab = str(e["source"]["system"]).startswith("lis.")
            by_participant[pid].append(Sent(pid, line.rstrip(b"\n"), e["event_id"], e["site_id"], lab))
    out.unlink()
    journeys = list(by_participant.values())
    # The simulator's later participants have shorter journeys (less follow-up by its cut-off):
    # shuffled, every stretch of the load has alike journeys.
    random.Random(seed).shuffle(journeys)  # noqa: S311 (an order, not a secret)
    active = active_participants(len(journeys))
    spacing = active * len(journeys) / sum(map(len, journeys))  # steps between two events of one participant
    order = sorted((k + j * spacing, k, j) for k, journey in enumerate(journeys) for j in range(len(journey)))
    return [journeys[k][j] for _, k, j in order[:events]]


def active_participants(participants: int) -> int:
    """How many of a cohort of ``participants`` are in their journey at once (``cohort``)."""
    return max(1, min(ACTIVE, participants // 5))


@dataclass
class Load:
    """What the load generator sent, when, and what it had to send again."""

    sent_at: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    via_gateway: int = 0
    resent: int = 0
    gateway_refused: int = 0


async def drive(
    settings: KafkaSettings,
    gateway_url: str,
    keys: dict[str, str],
    stream: list[Sent],
    rate: float,
    load: Load,
    stop: asyncio.Event,
) -> None:
    """Send ``stream`` at ``rate`` events/s (on schedule: behind after an outage, it catches up):
    lab results to the gateway, the rest straight to Kafka; what failed is sent again."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", enable_idempotence=True, linger_ms=5,
                                request_timeout_ms=15_000)  # fmt: skip
    await producer.start()
    retry: list[tuple[bytes, bytes, str]] = []
    site_buffers: dict[str, list[tuple[bytes, str]]] = defaultdict(list)

    def delivered(key: bytes, line: bytes, event_id: str) -> Any:
        def check(future: asyncio.Future[Any]) -> None:
            if future.cancelled() or future.exception() is not None:
                retry.append((key, line, event_id))

        return check

    async def to_kafka(key: bytes, line: bytes, event_id: str) -> None:
        try:
            future = await producer.send(settings.topics.participant_events, line, key=key)
        except Exception:
            retry.append((key, line, event_id))
            return
        load.sent_at.setdefault(event_id, time.perf_counter())
        future.add_done_callback(delivered(key, line, event_id))

    async def flush_gateway(client: httpx.AsyncClient) -> None:
        for site, lines in list(site_buffers.items()):
            if not lines:
                continue
            body = b"\n".join(line for line, _ in lines) + b"\n"
            try:
                response = await client.post(f"{gateway_url}/v1/events", content=body, headers={
                    "Authorization": f"Bearer {keys[site]}", "Content-Type": "application/x-ndjson"})  # fmt: skip
            except httpx.HTTPError:
                load.resent += len(lines)
                continue  # kept: sent again at the next flush (the gateway answers a resend without publishing)
            if response.status_code == 202:
                now = time.perf_counter()
                for _, event_id in lines:
                    load.sent_at.setdefault(event_id, now)
                load.via_gateway += len(lines)
                site_buffers[site] = []
            elif response.status_code == 503:
                load.resent += len(lines)
            else:  # refused (a registration not yet seen by the gateway): once more later, then dropped
                load.gateway_refused += len(lines)
                site_buffers[site] = []

    async with httpx.AsyncClient(timeout=30) as client:
        start = time.perf_counter()
        next_flush = start
        try:
            for i, sent in enumerate(stream):
                if stop.is_set():
                    break
                await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
                while retry:
                    await to_kafka(*retry.pop())
                    load.resent += 1
                if sent.lab:
                    site_buffers[sent.site_id].append((sent.line, sent.event_id))
                else:
                    await to_kafka(sent.participant_id.encode(), sent.line, sent.event_id)
                load.sent += 1
                if time.perf_counter() >= next_flush:
                    await flush_gateway(client)
                    next_flush = time.perf_counter() + GATEWAY_EVERY
            for _ in range(100):  # what is left, until the gateway and the broker took it
                await flush_gateway(client)
                while retry:
                    await to_kafka(*retry.pop())
                if not any(site_buffers.values()):
                    break
                await asyncio.sleep(1)
            await producer.flush()
        finally:
            await producer.stop()


async def watch_findings(settings: KafkaSettings, load: Load, samples: list[tuple[float, float]]) -> None:
    """(when read, seconds from the trigger's publication) for each first finding naming a trigger."""
    consumer = AIOKafkaConsumer(settings.topics.deviations, **settings.client_kwargs(),
                                isolation_level="read_committed", auto_offset_reset="earliest",
                                fetch_max_wait_ms=50)  # fmt: skip
    await consumer.start()
    timed: set[str] = set()
    try:
        async for record in consumer:
            now = time.perf_counter()
            finding = json.loads(record.value or b"{}")
            for trigger in finding.get("trigger_event_ids", ()):
                sent = load.sent_at.get(trigger)
                if sent is not None and trigger not in timed:
                    timed.add(trigger)
                    samples.append((now, now - sent))
    finally:
        await consumer.stop()
