"""``trialguard simulate --live``: a simulated cohort published to participant-events as it happens.

The cohort is the one ``trialguard simulate`` writes for the same seed, byte for byte and in the
same log order (event time across participants, each participant's own order kept), watermarks
(``ClockTicked``) included. It is built first in a temporary folder, because log order across
participants is only known once every participant has been drawn; then it is published at a
watchable pace: the span from the first event to the data cut-off (a little over three years of
event time: consents spread over 900 days, then up to two years of follow-up, until day 1092) is
compressed into ``minutes`` of wall-clock time. Event times are published as the simulator makes them; they
are not shifted towards now.

Each record is keyed by participant id (so a participant's events stay in one partition, in
order) and its value is the contract-v1 JSON line. The producer is idempotent with acks=all: a
retry after a lost acknowledgement neither duplicates nor reorders a participant's events.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.kafka import KafkaSettings, ensure_topics
from services.simulator.clock import CUTOFF_DAY, OFFSET, STUDY_ID, STUDY_START
from services.simulator.cohort import cohort_problem
from services.simulator.offline import simulate
from services.simulator.scripted_live import write_in_log_order

log = structlog.get_logger("trialguard.simulate.live")

CUTOFF = dt.datetime.fromisoformat(f"{STUDY_START + dt.timedelta(days=CUTOFF_DAY)}T00:00:00{OFFSET}")
"""The data cut-off as an aware time: the end of the span that ``minutes`` covers."""

_SETTLE_EVERY = 1000
"""Sends awaited at most this many at a time: a failed delivery surfaces, and memory stays bounded."""


@dataclass
class LiveReport:
    """What a live run published (for the log and the tests)."""

    published: int = 0
    participants: set[str] = field(default_factory=set)
    simulated_date: str | None = None
    """The event date (site time) of the last record published."""
    stopped: bool = False
    """True when a stop request ended the run before the cohort's last event."""


async def publish_live(
    settings: KafkaSettings,
    count: int,
    seed: int,
    rate: float,
    *,
    minutes: float,
    labels_path: Path | None = None,
    stop: asyncio.Event | None = None,
    progress_seconds: float = 5.0,
) -> LiveReport:
    """Simulate a cohort and publish its events to participant-events in event-time order, paced.

    Args:
        settings: the broker and the study's topics (created when absent).
        count: participants.
        seed: the seed; the events are those ``trialguard simulate`` writes for it.
        rate: the probability that a participant has a deviation injected.
        minutes: wall-clock minutes for the span from the first event to the data cut-off;
            0 publishes as fast as the broker takes them.
        labels_path: where to write the ground truth (``{participant_id: [rule ids]}``), or None.
        stop: set it to stop publishing; what was sent is flushed first.
        progress_seconds: a progress log line at most this often (wall-clock seconds).

    Returns:
        What was published.

    Raises:
        KafkaError: the broker cannot be reached or refused a record.
        OSError: the temporary cohort or the labels could not be written.
    """
    stop = stop or asyncio.Event()
    await ensure_topics(settings)
    with tempfile.TemporaryDirectory(prefix="trialguard-live.") as scratch:
        cohort = Path(scratch) / "cohort.jsonl"
        end = CUTOFF
        if settings.study_id == STUDY_ID:
            summary = await asyncio.to_thread(simulate, count, seed, cohort, labels_path, rate)
            log.info(
                "simulate.live.cohort",
                seed=seed,
                participants=summary.participants,
                events=summary.events,
                injected_participants=summary.injected_participants,
                injected=dict(sorted(summary.injected.items())),
                minutes=minutes,
            )
        else:  # a scripted study: its own cohort, paced over its own span of event time
            scripted = await asyncio.to_thread(
                write_in_log_order, settings.study_id, count, seed, rate, cohort, labels_path
            )
            end = scripted.last or end
            log.info(
                "simulate.live.cohort",
                study=settings.study_id,
                seed=seed,
                participants=scripted.participants,
                events=scripted.events,
                injected_participants=scripted.injected_participants,
                minutes=minutes,
            )
        producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", enable_idempotence=True)
        await producer.start()
        try:
            report = await _publish(producer, settings.topics.participant_events, cohort, minutes, stop,
                                    progress_seconds, end)  # fmt: skip
        finally:
            await producer.stop()
    log.info(
        "simulate.live.stopped" if report.stopped else "simulate.live.done",
        published=report.published,
        participants=len(report.participants),
        simulated_date=report.simulated_date,
    )
    return report


async def _publish(
    producer: AIOKafkaProducer,
    topic: str,
    cohort: Path,
    minutes: float,
    stop: asyncio.Event,
    progress_seconds: float,
    end: dt.datetime = CUTOFF,
) -> LiveReport:
    loop = asyncio.get_running_loop()
    report = LiveReport()
    pending: list[asyncio.Future[object]] = []
    first: dt.datetime | None = None
    started = reported = loop.time()
    speed = 0.0  # simulated seconds per wall-clock second; 0: no pacing
    for line in _lines(cohort):
        # Only the key and the event time are read: nothing of the event's content is logged.
        event = json.loads(line)
        occurred = dt.datetime.fromisoformat(event["occurred_at"])
        if first is None:
            first = occurred
            if minutes > 0:
                speed = max((end - first).total_seconds(), 1.0) / (minutes * 60)
        if speed:
            wait = started + (occurred - first).total_seconds() / speed - loop.time()
            if wait > 0:
                await _settle(pending)
                await _wait_unless_stopped(stop, wait)
        if stop.is_set():
            report.stopped = True
            break
        pending.append(await producer.send(topic, line.encode(), key=event["participant_id"].encode()))
        report.published += 1
        report.participants.add(event["participant_id"])
        report.simulated_date = occurred.date().isoformat()
        if len(pending) >= _SETTLE_EVERY:
            await _settle(pending)
        if loop.time() - reported >= progress_seconds:
            reported = loop.time()
            log.info(
                "simulate.live.progress",
                simulated_date=report.simulated_date,
                published=report.published,
                participants=len(report.participants),
            )
    await _settle(pending)
    return report


def _lines(cohort: Path) -> Iterator[str]:
    """The cohort file's lines without their newline (read lazily: the file can be large)."""
    with cohort.open(encoding="utf-8") as f:
        for line in f:
            yield line.rstrip("\n")


async def _settle(pending: list[asyncio.Future[object]]) -> None:
    """Wait until every record sent so far is acknowledged (raises the first failure)."""
    if pending:
        await asyncio.gather(*pending)
        pending.clear()


async def _wait_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less when a stop is requested meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


def run(
    settings: KafkaSettings,
    count: int,
    seed: int,
    rate: float,
    *,
    minutes: float,
    labels: str | None,
    stderr: TextIO,
) -> int:
    """``trialguard simulate --live``: 0 when published (or stopped by SIGINT/SIGTERM), 1 when the
    broker failed, 2 for a usage or I/O error."""
    problem = cohort_problem(count, seed, rate)
    if problem is None and not (math.isfinite(minutes) and minutes >= 0):
        problem = "--minutes must be 0 or more"
    if problem is None and labels and (Path(labels).is_dir() or not Path(labels).parent.is_dir()):
        problem = f"{labels}: not a file in an existing folder"
    if problem is not None:
        stderr.write(f"trialguard simulate: {problem}\n")
        return 2
    try:
        return asyncio.run(_run(settings, count, seed, rate, minutes, Path(labels) if labels else None, stderr))
    except OSError as e:
        stderr.write(f"trialguard simulate: {e.filename or 'temporary cohort'}: {e.strerror or e}\n")
        return 2


async def _run(
    settings: KafkaSettings, count: int, seed: int, rate: float, minutes: float, labels: Path | None, stderr: TextIO
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await publish_live(settings, count, seed, rate, minutes=minutes, labels_path=labels, stop=stop)
    except KafkaError as e:
        stderr.write(f"trialguard simulate: Kafka at {settings.bootstrap_servers}: {e}\n")
        return 1
    return 0
