"""The processing step over whole histories: the shared example, determinism, duplicates."""

from __future__ import annotations

from collections import defaultdict

from contracts import Finding, FindingSuperseded, encode, parse_event
from events import finding_id, process
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from tests.builders import example_lines, expected_rules


def replay(lines: list[bytes]) -> list[Finding]:
    states: dict[str, ParticipantState] = {}
    findings: list[Finding] = []
    for line in lines:
        event = parse_event(line)
        step = process(states.get(event.participant_id) or ParticipantState(event.participant_id), event, PROTOCOL)
        states[event.participant_id] = step.state
        findings += [f for f in step.findings if not isinstance(f, FindingSuperseded)]
    return findings


def test_example_raises_what_it_expects_for_the_rules_implemented() -> None:
    by_participant: dict[str, list[str]] = defaultdict(list)
    for f in replay(example_lines()):
        by_participant[f.participant_id].append(f.rule_id)
    implemented = {r.rule_id for r in PROTOCOL.rules}
    expected = expected_rules(implemented)
    assert {pid: sorted(by_participant.get(pid, [])) for pid in expected} == expected
    assert set(by_participant) <= set(expected)


def test_replay_is_byte_identical() -> None:
    first = [encode(f) for f in replay(example_lines())]
    assert first == [encode(f) for f in replay(example_lines())]


def test_a_duplicated_event_changes_nothing() -> None:
    lines = example_lines()
    doubled = [line for line in lines for _ in (0, 1)]
    assert [encode(f) for f in replay(doubled)] == [encode(f) for f in replay(lines)]


def test_finding_id_is_uuid5_of_study_participant_rule_and_triggers() -> None:
    finding = next(f for f in replay(example_lines()) if f.rule_id == "CONSENT-01")
    assert finding.deviation_id == finding_id("NCT06904729", "E-03", "CONSENT-01", finding.trigger_event_ids)  # type: ignore[union-attr]
    assert finding.deviation_id.version == 5  # type: ignore[union-attr]
    assert finding_id("NCT06904729", "E-03", "CONSENT-01", finding.trigger_event_ids) != finding_id(
        "NCT06904729", "E-04", "CONSENT-01", finding.trigger_event_ids
    )
