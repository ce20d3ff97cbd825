"""A finding's why in words, from the rule's declaration and the evidence, for every rule of every
protocol package: each rule's scenario findings give sentences; lab limits name the value, its
unit, its date, the limit and the clause quoted; nothing reads as a key or a Python list."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from events.scenarios import build, run
from protocol.kit import kit_of
from protocol.model import Protocol
from protocol.registry import studies, versions_for
from services.presentation.explanation import explain
from services.presentation.wording import label, value_text, with_unit


def _scenario_findings() -> dict[tuple[str, str], tuple[Protocol, dict[str, Any], list[dict[str, Any]]]]:
    """The first finding of each (study, rule) the scenarios raise, with its participant's events."""
    found: dict[tuple[str, str], tuple[Protocol, dict[str, Any], list[dict[str, Any]]]] = {}
    for study in studies():
        version = versions_for(study).versions[-1]
        kit = kit_of(version.protocol)
        for scenario in kit.scenarios():
            if not scenario.applies_to(version.name):
                continue
            events, _ = build(scenario, kit.vocabulary)
            bodies = [json.loads(e.model_dump_json()) for e in events]
            for finding in run(scenario, version.protocol, kit.vocabulary).findings:
                mine = [b for b in bodies if b["participant_id"] == finding.participant_id]
                body = json.loads(finding.model_dump_json())
                found.setdefault((study, finding.rule_id), (version.protocol, body, mine))
    return found


FINDINGS = _scenario_findings()
EVERY_RULE = [(study, rule.rule_id) for study in studies() for rule in versions_for(study).current.rules]


def _explained(study: str, rule_id: str) -> tuple[Any, dict[str, Any]]:
    protocol, body, events = FINDINGS[(study, rule_id)]
    return explain(body, protocol, kit_of(protocol).criteria, lambda: events), body


def test_both_protocols_are_covered() -> None:
    assert {"NCT06904729", "NCT06946485"} <= {study for study, _ in EVERY_RULE}


@pytest.mark.parametrize(("study", "rule_id"), EVERY_RULE, ids=[f"{s} {r}" for s, r in EVERY_RULE])
def test_every_rule_explains_its_scenario_finding_in_words(study: str, rule_id: str) -> None:
    assert (study, rule_id) in FINDINGS, f"no scenario of {study} raises {rule_id}: nothing to explain"
    why, body = _explained(study, rule_id)
    assert why.sentences
    assert all(sentence.strip() for sentence in why.sentences)
    text = why.text
    rule = versions_for(study).current.rule(rule_id)
    assert rule.reference in text or any(c.reference in text for c in kit_of(versions_for(study).current).criteria)
    # Words, not keys or Python: no snake_case names of the evidence, no [], True, None.
    for key in body["evidence"]:
        if "_" in key:
            assert not re.search(rf"\b{re.escape(key)}\b", text), f"{key} shown as a key in: {text}"
    assert "[]" not in text
    assert not re.search(r"\b(True|False|None)\b", text), text


def test_a_lab_value_below_its_limit_names_the_value_unit_date_limit_and_the_clause_quoted() -> None:
    protocol, body, events = FINDINGS[("NCT06946485", "ELIG-IN06")]
    why = explain(body, protocol, kit_of(protocol).criteria, lambda: events)
    lab = next(e for e in events if e["event_id"] == why.sources[0].event_id)
    assert lab["event_type"] == "ScreeningLabResulted", "the trigger shown is the lab result, not the enrollment"
    assert why.sentences[0].startswith(f"WBC 2.9 ×10⁹/L on {lab['occurred_at'][:10]} is below the minimum 3.0 ×10⁹/L")
    assert "Inclusion 6: “Adequate organ function: bone marrow (WBC ≥3×10⁹/L" in why.sentences[0]
    assert why.failing == {"wbc"}


def test_the_first_protocol_quotes_the_sub_clause_of_the_limit() -> None:
    why, _ = _explained("NCT06904729", "ELIG-IN09")
    assert re.match(r"^Lymphocytes 0\.99 ×10⁹/L on \d{4}-\d{2}-\d{2} is below the minimum 1\.0 ×10⁹/L", why.text)
    assert "— Inclusion 9.1: “Hematopoietic function:" in why.text
    assert why.failing == {"lymphocytes"}
    assert [s.event_type for s in why.sources] == ["ScreeningLabResulted"]


def test_two_failing_labs_under_two_clauses_make_two_sentences() -> None:
    protocol, body, events = FINDINGS[("NCT06904729", "ELIG-IN09")]
    evidence = body["evidence"] | {"wbc": 1.62, "alt_uln_multiple": 3.4}
    why = explain(body | {"evidence": evidence}, protocol, kit_of(protocol).criteria, lambda: events)
    assert len(why.sentences) == 2
    assert "WBC 1.62 ×10⁹/L" in why.sentences[0]
    assert "below the minimum 3.0 ×10⁹/L" in why.sentences[0]
    assert "ALT (× ULN) 3.4 × ULN" in why.sentences[1]
    assert "is above the maximum 3.0 × ULN — Inclusion 9.2: “Liver function" in why.sentences[1]
    assert why.failing == {"lymphocytes", "wbc", "alt_uln_multiple"}


def test_consent_01_says_who_signed_in_words() -> None:
    protocol, body, events = FINDINGS[("NCT06904729", "CONSENT-01")]
    unsigned = body | {"evidence": body["evidence"] | {"signed": []}}
    text = explain(unsigned, protocol, kit_of(protocol).criteria, lambda: events).text
    assert "signed []" not in text
    assert "Signed by: none" in text
    assert text.startswith("Study procedure performed before informed consent was complete")
    assert "Inclusion 8: “Participants and their guardians sign the informed consent" in text


def test_a_safety_alert_says_what_made_it_one() -> None:
    why, _ = _explained("NCT06904729", "SAFETY-CRS3")
    assert why.sentences[0] == "CRS grade 3 is at or above the threshold 3 — Safety: ASTCT CRS grading."
    assert why.failing == {"crs_grade"}
    serious, _ = _explained("NCT06904729", "SAFETY-SAE")
    assert serious.text.startswith("Serious adverse event: expedited reporting starts (serious: yes)")
    assert "Also recorded: CTCAE grade: 3" in serious.text


def test_a_rule_the_protocol_does_not_know_still_gets_words() -> None:
    protocol, body, _ = FINDINGS[("NCT06904729", "SEQ-03")]
    foreign = body | {"rule_id": "NOT-A-RULE", "term": "Something", "evidence": {"odd_value": [1, 2]}}
    assert explain(foreign, protocol).text == "Something (Odd value: 1, 2) — Interventions."
    assert explain(foreign, None).text.startswith("Something")


def test_explaining_changes_nothing_of_the_finding() -> None:
    protocol, body, events = FINDINGS[("NCT06904729", "ELIG-IN09")]
    before = json.dumps(body, sort_keys=True)
    explain(body, protocol, kit_of(protocol).criteria, lambda: events)
    assert json.dumps(body, sort_keys=True) == before


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("ruleset_fingerprint", "Ruleset fingerprint"),
        ("deviation_id", "Finding id"),
        ("alt_uln_multiple", "ALT (× ULN)"),
        ("egfr_schwartz", "eGFR (bedside Schwartz)"),
        ("hbsag_detected", "HBsAg detected"),
        ("sledai_2k", "SLEDAI 2K"),
    ],
)
def test_labels_are_words(name: str, words: str) -> None:
    assert label(name) == words


def test_values_and_units_read_as_on_a_report() -> None:
    assert with_unit(1.62, "10*9/L") == "1.62 ×10⁹/L"
    assert with_unit(40, "dilution") == "1:40"
    assert with_unit(3, "points") == "3"
    assert value_text([]) == "none"
    assert value_text(["guardian", "participant"]) == "guardian, participant"
    assert value_text(False) == "no"
    assert value_text("ScreeningLabResulted") == "Screening lab resulted"
