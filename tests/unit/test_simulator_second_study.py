"""``trialguard simulate --study NCT06946485``: the labels are what a replay finds, participant by
participant, and the same seed gives the same bytes."""

from __future__ import annotations

import collections
import io
import json
from pathlib import Path

from contracts import parse_event
from events.replay import Replay
from protocol.registry import versions_for
from services.simulator.scripted import SCRIPTS, run


def test_a_replay_of_the_second_study_cohort_finds_exactly_its_labels(tmp_path: Path) -> None:
    out, labels = tmp_path / "events.jsonl", tmp_path / "labels.json"
    assert run("NCT06946485", 80, 7, str(out), str(labels), 0.5, stderr=io.StringIO()) == 0
    replay = Replay(versions_for("NCT06946485"))
    found: dict[str, list[str]] = collections.defaultdict(list)
    for line in out.read_text(encoding="utf-8").splitlines():
        for finding in replay.feed(parse_event(line)):
            found[finding.participant_id].append(getattr(finding, "rule_id", ""))
    expected = json.loads(labels.read_text(encoding="utf-8"))
    assert {pid: sorted(rules) for pid, rules in found.items()} == expected
    injected = {rule for rules in expected.values() for rule in rules}
    assert injected == {rule for _, _, rules in SCRIPTS["NCT06946485"] for rule in rules}


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    paths = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in paths:
        run("NCT06946485", 20, 3, str(path), None, 0.3, stderr=io.StringIO())
    assert paths[0].read_bytes() == paths[1].read_bytes()
