"""A snapshot round prepared off the hot path (``services.rules.prepared``), and the phase timings
that found the latency tail (``services.rules.timing``), without a broker."""

from __future__ import annotations

import asyncio
import gc

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from events import snapshots
from protocol import ParticipantState
from services.rules import prepared
from services.rules.partitions import OwnedPartition
from services.rules.prepared import prepare_round
from services.rules.rounds import SNAPSHOT_OFFSET
from services.rules.timing import Histogram, Timings
from tests.unit.test_rules_rounds import SETTINGS, state_of

TOPIC = SETTINGS.topics.participant_state


async def test_a_prepared_round_holds_the_states_at_its_offset_whatever_comes_after() -> None:
    states = {f"P-{n}": state_of(f"P-{n}") for n in range(3)}
    at_round = dict(states)
    pending = prepare_round(TOPIC, states, ["P-2", "P-0"], 40)
    states["P-0"] = ParticipantState("P-0")  # a later event makes a new state; the round keeps the old one
    records = await pending.task
    assert pending.ready
    assert pending.pids == {"P-0", "P-2"}
    assert [r.key for r in records] == [b"P-0", b"P-2"]
    assert [snapshots.decode(r.value or b"") for r in records] == [at_round["P-0"], at_round["P-2"]]
    assert all(r.headers == ((SNAPSHOT_OFFSET, b"40"),) for r in records)


async def test_a_prepared_round_lets_the_event_loop_run_while_it_encodes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepared, "SLICE_SECONDS", 0.0)  # yield after every snapshot
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    states = {f"P-{n}": state_of(f"P-{n}") for n in range(20)}
    task = asyncio.create_task(ticker())
    await prepare_round(TOPIC, states, states, 5).task
    task.cancel()
    assert ticks >= 10


def test_no_round_is_prepared_again_while_one_is_on_its_way() -> None:
    part = OwnedPartition(0, producer=None, round_offset=10)
    assert part.round_due(110, 100)
    part.prepared = object()  # type: ignore[assignment]
    assert not part.round_due(500, 100)


def test_a_histogram_counts_cumulatively_and_keeps_the_largest() -> None:
    h = Histogram(bounds=(0.01, 0.1, 1.0))
    for seconds in (0.005, 0.01, 0.05, 3.0):
        h.observe(seconds)
    assert h.cumulative() == [("0.01", 2.0), ("0.1", 3.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert (h.count, h.largest) == (4, 3.0)


def test_the_phases_are_exposed_by_name() -> None:
    timings = Timings()
    registry = CollectorRegistry(auto_describe=False)
    timings.register(registry)
    timings.observe("commit", 0.02)
    text = generate_latest(registry).decode()
    assert 'trialguard_phase_seconds_count{phase="commit"} 1.0' in text
    assert 'trialguard_phase_seconds_max{phase="commit"} 0.02' in text
    assert "trialguard_event_loop_lag_seconds_count 0.0" in text


async def test_a_take_overs_collection_is_timed_apart_from_the_collectors_own() -> None:
    timings = Timings()
    stop = asyncio.Event()
    probe = asyncio.create_task(timings.probe_loop(stop))
    for _ in range(100):  # until the probe has registered its gc callback (its first step)
        if timings._on_gc in gc.callbacks:
            break
        await asyncio.sleep(0)
    assert timings._on_gc in gc.callbacks
    try:
        timings.collect_and_freeze()
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # this test process is not one to freeze
    gc.collect()  # counted as the collector's: only collect_and_freeze is told apart
    stop.set()
    await probe
    assert timings.take_over_collections.count == 1
    assert timings.gc_pauses.count >= 1  # this one, and any the collector started meanwhile
    registry = CollectorRegistry(auto_describe=False)
    timings.register(registry)
    text = generate_latest(registry).decode()
    assert "trialguard_gc_take_over_seconds_count 1.0" in text
    assert f"trialguard_gc_full_seconds_count {float(timings.gc_pauses.count)}" in text
