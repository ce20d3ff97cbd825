"""durable_rules as we use it: every matching rule fires, and working memory stays empty."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from durable.lang import m

from contracts import Category, Severity, parse_event
from protocol.engine import Engine
from protocol.model import Facts, OncePer, Protocol, RuleSpec, deviation


def _rule(rule_id: str, when: Any) -> RuleSpec:
    return deviation(
        rule_id, category=Category.ELIGIBILITY, severity=Severity.IMPORTANT, reference="test", term=rule_id,
        when=when, evidence=(), once_per=OncePer.TRIGGER,
    )  # fmt: skip


PROTOCOL = Protocol(
    study_id="TEST",
    version="0",
    title="engine test",
    arms=(),
    parameters=(),
    schedule=(),
    steps=(),
    fact_sources=(),
    rules=(
        _rule("LOW", m.x < 8),
        _rule("FLAG", m.flag == False),  # noqa: E712
        _rule("LIST", +m.items),
    ),
)


def test_a_fact_matching_several_rules_fires_every_one_in_catalogue_order() -> None:
    engine = Engine(PROTOCOL)
    assert [r.rule_id for r in engine.matching({"x": 3, "flag": False, "items": ["a"]})] == ["LOW", "FLAG", "LIST"]


def test_an_absent_fact_matches_nothing_and_nothing_matching_is_not_an_error() -> None:
    engine = Engine(PROTOCOL)
    assert engine.matching({"flag": True}) == []
    assert engine.matching({}) == []


def test_the_same_facts_match_again_nothing_is_remembered() -> None:
    engine = Engine(PROTOCOL)
    facts: Facts = {"x": 3}
    assert [r.rule_id for r in engine.matching(facts)] == ["LOW"]
    assert [r.rule_id for r in engine.matching(dict(facts))] == ["LOW"]


def _rss_kib() -> int:
    fields = Path("/proc/self/status").read_text().split("VmRSS:")[1].split()
    return int(fields[0])


def test_working_memory_stays_flat_over_many_events() -> None:
    engine = Engine(PROTOCOL)

    def run(n: int, offset: int) -> None:
        for i in range(offset, offset + n):
            engine.matching({"x": i % 16, "flag": i % 3 == 0, "participant": f"P-{i}", "n": i})

    run(20_000, 0)  # warm up: allocator pools, the engine's caches
    before = _rss_kib()
    run(100_000, 20_000)
    grown = _rss_kib() - before
    # Five times as many events again: anything kept per event (~100 bytes or more) would show as
    # tens of MiB. Allow allocator noise only.
    assert grown < 4 * 1024, f"RSS grew by {grown} KiB over 100,000 events"


def test_remembered_verdicts_give_exactly_what_consulting_the_engine_every_time_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict memo (Engine.matching) is only a memo: a simulated cohort with every rule
    injected replays byte-identically with it and with the engine consulted for every fact."""
    import importlib

    from contracts import encode
    from events.replay import Replay
    from protocol.nct06904729 import PROTOCOL
    from services import simulator

    log = tmp_path / "cohort.jsonl"
    simulator.simulate(300, 5, log, tmp_path / "labels.json", 0.5)
    events = [parse_event(line) for line in log.read_bytes().splitlines()]

    def replayed() -> list[bytes]:
        replay = Replay(PROTOCOL)
        return [encode(f) for e in events for f in replay.feed(e)]

    remembered = replayed()
    every_time = Engine(PROTOCOL)
    every_time.read = None
    monkeypatch.setattr(importlib.import_module("events.decide"), "engine_for", lambda protocol: every_time)
    assert replayed() == remembered
    assert len({f.split(b'"rule_id":"')[1].split(b'"')[0] for f in remembered}) >= 30  # most of the catalogue


def test_the_engine_names_every_fact_its_conditions_read() -> None:
    from protocol.nct06904729 import PROTOCOL

    read = Engine(PROTOCOL).read
    assert read is not None
    assert {"event_type", "visit_in_window", "missed_visits", "dose_ratio", "serious", "consent_withdrawn_at"} <= read
    assert "infused_on" not in read  # evidence only: no condition reads it
