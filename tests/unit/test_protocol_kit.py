"""The protocol authoring kit: scenario parser, runner, coverage check, specification, diff, JUnit XML."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from durable.lang import m

from contracts import Category, Severity
from events.scenarios import run
from protocol.coverage import gaps
from protocol.kit import kit_of
from protocol.model import deviation
from protocol.nct06904729 import PROTOCOL
from protocol.registry import studies
from protocol.scenarios import ScenarioError, parse_feature
from protocol.versions import Version
from services.cli import main
from services.protocol_kit.cli import coverage_gaps, report_diff, run_scenarios
from services.protocol_kit.junit import write_junit
from services.protocol_kit.spec import render_html, render_markdown, spec_context

KIT = kit_of(PROTOCOL)

FAILING = """Feature: On purpose
  Scenario: ALT above 3x ULN expected silent
    Given an eligible participant
    And ALT 121 U/L with ULN 40
    Then ELIG-IN09 is not raised
    And nothing is raised
"""


def _parse(text: str) -> list:  # type: ignore[type-arg]
    return parse_feature(text, "bad.feature", KIT.vocabulary)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("Feature: F\n  Scenario: s\n    Given an eligible participant\n  Oops\n", 4, "expected"),
        ("Feature: F\n  Scenario: s\n    Given a participant from nowhere\n    Then nothing is raised\n",
         3, "base journey"),
        ("Feature: F\n  Scenario: s\n    Given an eligible participant\n    And ALT is high\n"
         "    Then nothing is raised\n", 4, "no step"),
        ("Feature: F\n  Scenario: s\n    Given an eligible participant\n    Then ELIG-IN09 goes off\n", 4, "Then step"),
        ("Feature: F\n  Scenario: s\n    Given an eligible participant\n    And ECOG 3\n", 2, "expects nothing"),
        ("Feature: F\n  Scenario Outline: s\n    Given an eligible participant\n    And ECOG <score>\n"
         "    Then nothing is raised\n    Examples:\n      | grade |\n      | 2 |\n", 4, "<score>"),
    ],
)  # fmt: skip
def test_a_malformed_scenario_is_an_error_naming_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        _parse(text)
    assert (caught.value.path, caught.value.line) == ("bad.feature", line)
    assert str(caught.value).startswith(f"bad.feature:{line}: ")
    assert words in str(caught.value)


def test_a_failing_scenario_shows_expected_versus_got_and_the_events_that_mattered() -> None:
    (scenario,) = _parse(FAILING)
    outcome = run(scenario, PROTOCOL, KIT.vocabulary)
    assert not outcome.passed
    first, second = outcome.failures
    assert (first.line, first.expected) == (5, "no ELIG-IN09")
    assert first.got.startswith('ELIG-IN09 with {"alt_uln_multiple": 3.025')
    assert (second.expected, second.got) == ("no finding", "ELIG-IN09")
    # the changed lab, and the enrollment that triggered the finding: not the whole journey
    assert [e.event_type for e in outcome.mattered] == ["ScreeningLabResulted", "ParticipantEnrolled"]


def test_the_cli_prints_a_failure_and_writes_junit_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    feature = tmp_path / "purpose.feature"
    feature.write_text(FAILING + "\n  Scenario: clean\n    Given an eligible participant\n    Then nothing is raised\n")
    junit = tmp_path / "junit.xml"
    assert main(["protocol", "test", str(feature), "--junit-xml", str(junit)]) == 1
    out = capsys.readouterr().out
    assert "expected: no ELIG-IN09" in out
    assert "got:      ELIG-IN09 with" in out
    assert "ScreeningLabResulted" in out
    assert out.rstrip().endswith("1 passed, 1 failed")
    suites = ET.parse(junit).getroot()
    assert (suites.get("tests"), suites.get("failures")) == ("2", "1")
    (failure,) = suites.iter("failure")
    assert "expected: no ELIG-IN09" in (failure.text or "")


def test_the_package_scenarios_pass_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "test"]) == 0
    assert capsys.readouterr().out.strip().endswith("passed, 0 failed")


@pytest.mark.parametrize("study", studies())
def test_check_passes_for_every_installed_study(study: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "check", "--study", study]) == 0
    assert "no gap(s)" in capsys.readouterr().out


@pytest.mark.parametrize("study", studies())
def test_every_installed_study_passes_its_scenarios_through_the_cli(
    study: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["protocol", "test", "--study", study]) == 0
    assert capsys.readouterr().out.strip().endswith("passed, 0 failed")


def test_removing_a_scenario_names_the_gap(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios"
    shutil.copytree(KIT.scenario_folder, folder)
    text = (folder / "safety.feature").read_text()
    start = text.index("    @boundary\n    Scenario: CRS grade 2")
    end = text.index("  Rule: SAFETY-ICANS3")
    (folder / "safety.feature").write_text(text[:start] + text[end:])
    trimmed = dataclasses.replace(KIT, scenario_folder=folder)
    found = coverage_gaps([Version(PROTOCOL)], kit_for=lambda _: trimmed)
    assert found == [
        "NCT06904729 v1.0: rule SAFETY-CRS3 has no @boundary scenario that does not raise it (the value just inside)"
    ]


def test_check_names_an_unsourced_parameter_and_an_unlisted_criterion() -> None:
    parameters = tuple(dataclasses.replace(p, source="", assumption=None) if p.name == "ecog_max" else p
                       for p in PROTOCOL.parameters)  # fmt: skip
    protocol = dataclasses.replace(PROTOCOL, parameters=parameters)
    criteria = [c for c in KIT.criteria if c.reference != "Inclusion 11"]
    found = gaps(protocol, KIT.scenarios(), criteria)
    assert "NCT06904729 v1.0: parameter ecog_max has neither a source nor an ASSUMPTION note" in found
    assert "NCT06904729 v1.0: rule ELIG-IN11 enforces Inclusion 11, which the criteria list does not name" in found


def test_the_specification_has_every_rule_and_escapes_what_it_quotes() -> None:
    hostile = dataclasses.replace(PROTOCOL.rules[0], term="<script>alert(1)</script>")
    protocol = dataclasses.replace(PROTOCOL, rules=(hostile, *PROTOCOL.rules[1:]))
    outcomes = run_scenarios([Version(protocol)])
    context = spec_context(Version(protocol), KIT.criteria, outcomes)
    page = render_html(context, dt.date(2026, 1, 1))
    assert page.count('<section class="rule"') == len(PROTOCOL.rules) == 34
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Inclusion 7" in page
    assert "investigator judgement" in page
    assert context["fingerprint"] in page
    assert "@media print" in page
    markdown = render_markdown(context, dt.date(2026, 1, 1))
    assert markdown.count("\n## ") == 34 + 2
    assert "<script>" not in markdown


def test_the_docs_command_writes_the_page(tmp_path: Path) -> None:
    out = tmp_path / "spec.html"
    assert main(["protocol", "docs", "--study", "NCT06904729", "--out", str(out)]) == 0
    assert out.read_text().count('<section class="rule"') == 34


def _amended() -> tuple[object, object]:
    parameters = tuple(dataclasses.replace(p, value=3) if p.name == "ecog_max" else p for p in PROTOCOL.parameters)
    added = deviation(
        "VISIT-03",
        category=Category.VISIT_SCHEDULE,
        severity=Severity.MINOR,
        reference="Follow-up",
        term="A visit after the last one",
        when=m.visit_day > 745,
        evidence=("visit",),
    )
    rules = tuple(
        dataclasses.replace(r, severity=Severity.MINOR) if r.rule_id == "DOSE-01" else r
        for r in PROTOCOL.rules
        if r.rule_id != "RELAPSE"
    )
    return PROTOCOL, dataclasses.replace(PROTOCOL, version="1.1", parameters=parameters, rules=(*rules, added))


def test_diff_lists_exactly_what_an_amendment_changes() -> None:
    before, after = _amended()
    out = io.StringIO()
    assert report_diff(before, after, "text", out) == 1  # type: ignore[arg-type]
    assert out.getvalue().splitlines() == [
        "rule RELAPSE removed",
        "rule ELIG-IN11 changed",
        "    condition: the event is ParticipantEnrolled and ecog is above 2 (ecog_max) -> "
        "the event is ParticipantEnrolled and ecog is above 2",
        "    parameter_values: {'ecog_max': 2, 'screening_window_days': 28} -> "
        "{'ecog_max': 3, 'screening_window_days': 28}",
        "rule DOSE-01 changed",
        "    severity: important -> minor",
        "rule VISIT-03 added",
        "parameter ecog_max changed",
        "    value: 2 -> 3",
        "NCT06904729 v1.0 -> v1.1: 5 change(s)",
    ]


def test_diff_as_json_and_equal_versions() -> None:
    import json

    before, after = _amended()
    out = io.StringIO()
    assert report_diff(before, after, "json", out) == 1  # type: ignore[arg-type]
    changes = json.loads(out.getvalue())["changes"]
    assert {(c["what"], c["name"], c["change"]) for c in changes} == {
        ("rule", "RELAPSE", "removed"),
        ("rule", "ELIG-IN11", "changed"),
        ("rule", "DOSE-01", "changed"),
        ("rule", "VISIT-03", "added"),
        ("parameter", "ecog_max", "changed"),
    }
    assert changes[-1]["fields"] == {"value": {"before": 2, "after": 3}}
    assert report_diff(PROTOCOL, PROTOCOL, "text", io.StringIO()) == 0
    assert main(["protocol", "diff", "1.0", "1.0"]) == 0


def test_junit_xml_escapes_scenario_text(tmp_path: Path) -> None:
    (scenario,) = _parse(FAILING.replace("expected silent", "<b>&amp"))
    path = tmp_path / "j.xml"
    write_junit([run(scenario, PROTOCOL, KIT.vocabulary)], path)
    (case,) = ET.parse(path).getroot().iter("testcase")
    assert case.get("name") == "ALT above 3x ULN <b>&amp"
