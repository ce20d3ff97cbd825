"""The restore part of the live benchmark: how long the rules service takes to get many
participants' state back from the participant-state topic when it takes over its partitions.

Real states come from replaying the start of the benchmark's simulated history; each is copied
under distinct participant ids until there are as many snapshots as asked for, and the snapshots
are produced keyed by participant id (so they land on the partitions the service would write them
to). Then ``restore_snapshots`` is timed for every partition, one after another as the service's
``_assign`` opens them, against a pass that reads the same records without decoding them.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from aiokafka import AIOKafkaProducer

from contracts import parse_event
from events import snapshots
from events.replay import Replay
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from protocol.state import evolve
from services.kafka import KafkaSettings, ensure_topics, partition_ids, read_partition
from services.rules import restore_snapshots

PLACEHOLDER = "BENCHPID0000000000000000"
"""Encoded in place of the participant id once per real state, then replaced by each copy's id:
the same bytes as ``encode(evolve(state, participant_id=copy_id))`` at a fraction of the cost."""


def real_states(history: Path, events: int) -> list[ParticipantState]:
    """Every participant's state after replaying the first ``events`` events of ``history``."""
    replay = Replay(PROTOCOL)
    with history.open("rb") as f:
        for line in islice(f, events):
            replay.feed(parse_event(line))
    return list(replay.states.values())


def _renamed(state: ParticipantState, pid: str) -> ParticipantState:
    # The kept pre-enrollment state (packed, compressed) keeps the original id: nothing a
    # restore does reads it, and renaming it would mean unpacking every copy.
    return evolve(state, participant_id=pid)


def copies(states: list[ParticipantState], n: int) -> Iterator[tuple[str, bytes]]:
    """``n`` (participant id, snapshot) pairs: copy k of state i is ``<its id>-<k>``."""
    templates = [snapshots.encode(_renamed(s, PLACEHOLDER)) for s in states]
    marker = PLACEHOLDER.encode()
    for i in range(n):
        k, j = divmod(i, len(states))
        pid = f"{states[j].participant_id}-{k:02d}"
        yield pid, templates[j].replace(marker, pid.encode())


def check_copies(states: list[ParticipantState]) -> None:
    """The shortcut of ``copies`` gives what encoding a renamed copy gives, and decodes to it."""
    for state, (pid, value) in zip(states[:3], copies(states, 3), strict=True):
        if value != snapshots.encode(_renamed(state, pid)) or snapshots.decode(value).participant_id != pid:
            raise SystemExit(f"the snapshot copy of {state.participant_id} is not its encoded copy")


async def produce_snapshots(settings: KafkaSettings, snapshot_pairs: Iterator[tuple[str, bytes]]) -> tuple[int, int]:
    """Produce the snapshots to participant-state, keyed by participant id; (records, bytes)."""
    producer = AIOKafkaProducer(**settings.client_kwargs(), acks="all", linger_ms=20,
                                max_batch_size=1024 * 1024, max_request_size=4 * 1024 * 1024)  # fmt: skip
    await producer.start()
    records = size = 0
    try:
        for pid, value in snapshot_pairs:
            await producer.send(settings.topics.participant_state, value, key=pid.encode())
            records += 1
            size += len(value)
        await producer.flush()
    finally:
        await producer.stop()
    return records, size


async def read_only(settings: KafkaSettings, partition: int) -> tuple[int, int]:
    """``restore_snapshots`` without the decoding: the latest value of each key; (records, bytes)."""
    latest: dict[bytes, bytes | None] = {}
    read = size = 0
    async for record in read_partition(settings, settings.topics.participant_state, partition):
        read += 1
        size += len(record.value or b"")
        if record.key is not None:
            latest[record.key] = record.value
    return read, size


@dataclass
class Restored:
    participants: int = 0
    records: int = 0
    seconds: float = 0.0
    decoding: float = 0.0
    """Seconds to decode every restored state afterwards (the service decodes each on first use)."""


async def restore_one_by_one(settings: KafkaSettings, partitions: list[int]) -> Restored:
    """Every partition restored in turn, as the service opens them; then every state decoded, as
    the participants' next events would. Each partition's states are dropped once counted."""
    done = Restored()
    for p in partitions:
        start = time.perf_counter()
        states, read = await restore_snapshots(settings, p)
        done.seconds += time.perf_counter() - start
        done.participants += len(states)
        done.records += read
        start = time.perf_counter()
        for pid in list(states):
            states[pid]  # decoded on first use
        done.decoding += time.perf_counter() - start
        del states
    return done


async def restore_at_once(settings: KafkaSettings, partitions: list[int]) -> Restored:
    """Every partition restored concurrently (asyncio.gather), all states held at the end."""
    start = time.perf_counter()
    results = await asyncio.gather(*(restore_snapshots(settings, p) for p in partitions))
    seconds = time.perf_counter() - start
    return Restored(sum(len(s) for s, _ in results), sum(r for _, r in results), seconds)


async def restore_benchmark(
    settings: KafkaSettings, history: Path, participants: int, history_events: int, *, concurrent: bool
) -> None:
    """Print the restore figures for ``participants`` snapshots in ``settings``' namespace."""
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)  # as `trialguard` sets it (services/cli.py): the service's own GC
    try:
        prepared = time.perf_counter()
        states = real_states(history, history_events)
        check_copies(states)
        await ensure_topics(settings)
        records, size = await produce_snapshots(settings, copies(states, participants))
        partitions = await partition_ids(settings, settings.topics.participant_state)
        print(f"  (restore set-up: {len(states):,} real participant states from the first {history_events:,} "
              f"events, {records:,} snapshots ({size / 1e6:,.0f} MB) produced to {len(partitions)} partitions in "
              f"{time.perf_counter() - prepared:.0f} s)")  # fmt: skip
        del states
        gc.collect()

        start = time.perf_counter()
        read = read_bytes = 0
        for p in partitions:
            r, b = await read_only(settings, p)
            read += r
            read_bytes += b
        reading = time.perf_counter() - start

        done = await restore_one_by_one(settings, partitions)
        decoding = max(0.0, done.seconds - reading)
        first_use = done.decoding / max(done.participants, 1) * 1e6
        print(f"restore of {done.participants:,} participants from snapshots: {done.seconds:.1f} s "
              f"({read_bytes / 1e6:,.0f} MB, {read_bytes / max(read, 1):,.0f} bytes/snapshot; "
              f"{done.records:,} snapshot records read; {len(partitions)} partitions one after another, "
              "as the service opens them)")  # fmt: skip
        print(f"  reading from Kafka (a pass that only reads the same records): {reading:.1f} s "
              f"({read_bytes / 1e6 / max(reading, 1e-9):,.0f} MB/s); decoding (the rest): {decoding:.1f} s "
              f"({decoding / max(done.participants, 1) * 1e6:,.0f} µs/participant)")  # fmt: skip
        print(f"  each state is decoded when its participant's next event comes: decoding all of them "
              f"afterwards took {done.decoding:.1f} s ({first_use:,.0f} µs/participant)")  # fmt: skip
        if concurrent:
            gc.collect()
            together = await restore_at_once(settings, partitions)
            print(f"restore, the {len(partitions)} partitions at once (asyncio.gather): {together.seconds:.1f} s "
                  f"({together.participants:,} participants, {together.records:,} snapshot records read)")  # fmt: skip
    finally:
        gc.set_threshold(*thresholds)
