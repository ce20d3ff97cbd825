"""The cohort simulator: deterministic files, valid events in log order, a realistic cohort, every rule
of the catalogue injectable, and labels that a replay through the protocol reproduces exactly."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import ParticipantEvent, parse_event
from contracts.participant_events import (
    ConsentSigned,
    EligibilityConfirmed,
    FollowUpVisitCompleted,
    ParticipantEnrolled,
    ParticipantRegistered,
    ScreeningLabResulted,
)
from events import process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from services import simulator

SITE_OFFSET = dt.timedelta(hours=8)


def simulate(folder: Path, participants: int, seed: int, rate: float = 0.3) -> tuple[Path, dict[str, list[str]]]:
    """Simulate a cohort into ``folder``: the events file and the labels."""
    out, labels = folder / f"cohort-{seed}.jsonl", folder / f"labels-{seed}.json"
    simulator.simulate(participants, seed, out, labels, rate)
    return out, json.loads(labels.read_text())


def events_of(path: Path) -> list[ParticipantEvent]:
    with path.open("rb") as f:
        return [parse_event(line) for line in f]


def replayed(path: Path) -> dict[str, list[str]]:
    """The rule ids the protocol raises per participant (sorted, with repeats) when it replays the file."""
    states: dict[str, ParticipantState] = {}
    found: dict[str, list[str]] = defaultdict(list)
    for event in events_of(path):
        pid = event.participant_id
        step = process(states.get(pid) or ParticipantState(pid), event, PROTOCOL)
        states[pid] = step.state
        found[pid] += [f.rule_id for f in step.findings]
    return {pid: sorted(rules) for pid, rules in found.items()}


def assert_labels_reproduced(path: Path, labels: dict[str, list[str]]) -> None:
    raised = replayed(path)
    expected = {pid: rules for pid, rules in labels.items() if rules}
    assert {pid: rules for pid, rules in raised.items() if rules} == expected
    assert set(raised) == set(labels)  # every participant has events, every label a participant


# --- the catalogue ----------------------------------------------------------------------------------


def test_every_rule_of_the_protocol_is_injectable() -> None:
    assert len(set(simulator.RULE_IDS)) == len(simulator.RULE_IDS)
    assert set(simulator.RULE_IDS) == {r.rule_id for r in PROTOCOL.rules}


def test_round_robin_injects_every_rule_once_as_many_participants_are_injected() -> None:
    injected = [j.rules for j, _ in simulator.participants(len(simulator.RULE_IDS), 5, 1.0)]
    assert {rule for rules in injected for rule in rules} == set(simulator.RULE_IDS)


def test_every_rule_appears_in_the_labels_of_300_participants(tmp_path: Path) -> None:
    _, labels = simulate(tmp_path, 300, 1, 0.5)
    assert {rule for rules in labels.values() for rule in rules} == set(simulator.RULE_IDS)


# --- the key property: the labels are what the protocol raises --------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_replay_raises_exactly_the_labels(tmp_path: Path, seed: int) -> None:
    path, labels = simulate(tmp_path, 150, seed, 0.5)
    assert sum(map(len, labels.values())) > 50
    assert_labels_reproduced(path, labels)


def test_a_replay_raises_exactly_the_labels_when_every_participant_has_deviations(tmp_path: Path) -> None:
    path, labels = simulate(tmp_path, 120, 99, 1.0)
    assert all(labels.values()) or sum(1 for rules in labels.values() if not rules) < 5
    assert_labels_reproduced(path, labels)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10**9), rate=st.sampled_from([0.3, 0.7, 1.0]))
def test_a_replay_raises_exactly_the_labels_for_any_seed(
    tmp_path_factory: pytest.TempPathFactory, seed: int, rate: float
) -> None:
    path, labels = simulate(tmp_path_factory.mktemp("cohort"), 30, seed, rate)
    assert_labels_reproduced(path, labels)


def test_with_no_deviations_only_relapses_are_raised(tmp_path: Path) -> None:
    path, labels = simulate(tmp_path, 120, 8, 0.0)
    assert {rule for rules in labels.values() for rule in rules} == {"RELAPSE"}
    assert_labels_reproduced(path, labels)


# --- determinism -----------------------------------------------------------------------------------


def test_the_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, _ = simulate(tmp_path / "a", 60, 11)
    second, _ = simulate(tmp_path / "b", 60, 11)
    assert first.read_bytes() == second.read_bytes()
    assert (tmp_path / "a" / "labels-11.json").read_bytes() == (tmp_path / "b" / "labels-11.json").read_bytes()


def test_different_seeds_give_different_cohorts(tmp_path: Path) -> None:
    first, _ = simulate(tmp_path, 30, 11)
    second, _ = simulate(tmp_path, 30, 12)
    assert first.read_bytes() != second.read_bytes()


def test_event_ids_are_uuid5_of_seed_participant_and_number() -> None:
    expected = uuid.uuid5(simulator.EVENT_NAMESPACE, "7/S7-00003/42")
    assert simulator.event_id(7, "S7-00003", 42) == str(expected)


def test_a_larger_cohort_starts_with_the_same_participants() -> None:
    small = [(j.pid, j.labels, len(ev)) for j, ev in simulator.participants(20, 4, 0.5)]
    large = [(j.pid, j.labels, len(ev)) for j, ev in simulator.participants(40, 4, 0.5)]
    assert large[:20] == small


# --- the file --------------------------------------------------------------------------------------


def test_every_line_is_a_contract_v1_event_in_log_order(tmp_path: Path) -> None:
    path, labels = simulate(tmp_path, 80, 21)
    events = events_of(path)
    assert len({e.event_id for e in events}) == len(events)
    times = [e.occurred_at for e in events]
    assert times == sorted(times)
    assert all(e.occurred_at.utcoffset() == SITE_OFFSET == e.recorded_at.utcoffset() for e in events)
    assert all(e.recorded_at >= e.occurred_at for e in events)
    assert {e.participant_id for e in events} == set(labels)
    assert {e.site_id for e in events} == {"GZ-01", "GZ-02"}
    # Participants are interleaved, and each participant's events keep their own order.
    first = events[0].participant_id
    positions = [i for i, e in enumerate(events) if e.participant_id == first]
    assert positions[-1] - positions[0] + 1 > len(positions)


def test_the_labels_file_lists_every_participant_sorted(tmp_path: Path) -> None:
    _, labels = simulate(tmp_path, 40, 3, 0.6)
    text = (tmp_path / "labels-3.json").read_text()
    assert text == json.dumps(labels, sort_keys=True, indent=2) + "\n"
    assert list(labels) == [f"S3-{i:05d}" for i in range(1, 41)]
    assert all(rules == sorted(rules) for rules in labels.values())


def test_nothing_but_the_two_files_is_left_behind(tmp_path: Path) -> None:
    simulate(tmp_path, 20, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort-5.jsonl", "labels-5.json"]


# --- a realistic cohort ----------------------------------------------------------------------------


def test_the_cohort_looks_like_the_trial(tmp_path: Path) -> None:
    path, labels = simulate(tmp_path, 200, 17, 0.3)
    events = events_of(path)
    by_type: Counter[str] = Counter(e.event_type for e in events)
    by_participant: dict[str, list[ParticipantEvent]] = defaultdict(list)
    for e in events:
        by_participant[e.participant_id].append(e)

    # Ages at consent spread over the range (and a little beyond: screen failures, ELIG-IN01).
    ages = []
    for journey in by_participant.values():
        birth = next(e.payload.birth_date for e in journey if isinstance(e, ParticipantRegistered))
        signed = [e.occurred_at.date() for e in journey if isinstance(e, ConsentSigned)]
        if signed:
            ages.append((min(signed) - birth).days / 365.25)
    assert min(ages) < 7
    assert max(ages) > 17
    assert all(4.9 < age < 20 for age in ages)

    # Screen failures: confirmed not eligible, never enrolled, nothing raised (unless injected).
    screen_failures = [
        pid
        for pid, journey in by_participant.items()
        if any(isinstance(e, EligibilityConfirmed) and not e.payload.eligible for e in journey)
        and not any(isinstance(e, ParticipantEnrolled) for e in journey)
    ]
    assert len(screen_failures) >= 10
    arms = Counter(e.payload.arm for e in events if isinstance(e, ParticipantEnrolled))
    assert arms["low_dose"] > 40
    assert arms["high_dose"] > 40

    # Real-world units and LOINC alternatives.
    units = {(e.payload.loinc, e.payload.unit) for e in events if isinstance(e, ScreeningLabResulted)}
    for expected in [("718-7", "g/L"), ("718-7", "g/dL"), ("14682-9", "umol/L"), ("2160-0", "mg/dL"),
                     ("14631-6", "umol/L"), ("1975-2", "mg/dL"), ("8117-4", "%"), ("8116-6", "/uL")]:  # fmt: skip
        assert expected in units
    assert {unit for loinc, unit in units if loinc == "751-8"} >= {"10*9/L", "10*3/uL"}
    assert any(loinc in ("26474-7", "26464-8", "804-5", "26499-4", "753-4") for loinc, _ in units)

    present = (
        "KidneyBiopsyReported",
        "DiseaseActivityScored",
        "SLEClassificationScored",
        "MedicalHistoryRecorded",
        "PerformanceStatusAssessed",
        "LeukapheresisPerformed",
        "LymphodepletionAdministered",
        "AdverseEventReported",
        "RelapseReported",
        "ParticipantWithdrawn",
        "ConcomitantMedicationRecorded",
    )
    for kind in present:
        assert by_type[kind] > 0, kind
    assert by_type["FollowUpVisitCompleted"] > 500
    assert by_type["ClockTicked"] > len(events) / 2
    # Some participants complete M24, others are still followed at the cut-off (their last
    # watermark is the cut-off's midnight).
    visits = Counter(e.payload.visit for e in events if isinstance(e, FollowUpVisitCompleted))
    assert 0 < visits["M24"] < visits["D7"]
    cutoff = dt.datetime.combine(simulator.STUDY_START + dt.timedelta(days=simulator.CUTOFF_DAY), dt.time())
    assert events[-1].occurred_at.replace(tzinfo=None) == cutoff
    assert sum(1 for rules in labels.values() if "RELAPSE" in rules) > 5


def test_a_full_journey_is_about_150_events() -> None:
    complete = [
        sum(1 for _ in simulator.lines(j, ev))
        for j, ev in simulator.participants(300, 2, 0.0)
        if j.visits and j.visits[-1].code == "M24" and j.outcome == "enrolled"
    ]
    assert complete
    assert 130 < sum(complete) / len(complete) < 175


# --- the command -----------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    """``trialguard`` in process (imported here: the CLI module brings Kafka clients along)."""
    from services.cli import main as trialguard

    return trialguard(argv)


def test_trialguard_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, labels = tmp_path / "cohort.jsonl", tmp_path / "labels.json"
    code = main(["simulate", "--participants", "40", "--seed", "9", "--out", str(out), "--labels", str(labels),
                 "--deviation-rate", "0.5"])  # fmt: skip
    assert code == 0
    assert len(json.loads(labels.read_text())) == 40
    stderr = capsys.readouterr().err
    assert "40 participants" in stderr
    assert "injected" in stderr


def test_trialguard_simulate_without_labels(tmp_path: Path) -> None:
    out = tmp_path / "cohort.jsonl"
    assert main(["simulate", "--participants", "5", "--seed", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.jsonl"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--participants", "0"], "at least 1"),
        (["--participants", "5", "--deviation-rate", "1.5"], "between 0 and 1"),
        (["--participants", "5", "--out", "/nonexistent/folder/x.jsonl"], "existing folder"),
    ],
)
def test_trialguard_simulate_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    argv = ["simulate", "--seed", "1", "--out", str(tmp_path / "x.jsonl"), *args]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.jsonl").exists()


def test_progress_is_reported_for_large_cohorts(tmp_path: Path) -> None:
    import io

    progress = io.StringIO()
    simulator.simulate(1000, 1, tmp_path / "c.jsonl", None, 0.3, progress=progress)
    lines = [line for line in progress.getvalue().splitlines() if "% (" in line]
    assert len(lines) == 10
    assert lines[-1].startswith("simulate: 100%")


def test_the_simulator_reads_its_study_through_the_registry_not_the_trial_module(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from protocol import registry
    from protocol.kit import SimulationProfile, simulation_profile
    from protocol.nct06904729.screening import REQUIRED_LABS
    from services.simulator import study

    assert study.simulated_protocol() is PROTOCOL
    assert study.screening_labs() == REQUIRED_LABS
    assert simulation_profile(PROTOCOL) == SimulationProfile(REQUIRED_LABS)
    assert [study.target_cells_per_kg(a.name) for a in PROTOCOL.arms] == [5e5, 1e6]

    # A study whose package does not load cannot be simulated: the registry's error, not a stale copy.
    monkeypatch.setattr(registry, "REGISTRY", registry.Registry(list))
    study.simulated_protocol.cache_clear()
    try:
        with pytest.raises(registry.UnknownStudyError):
            study.simulated_protocol()
    finally:
        study.simulated_protocol.cache_clear()
