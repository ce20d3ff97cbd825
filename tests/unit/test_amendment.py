"""An amendment may change anything, and is compiled as a rule set of its own: the test amendment
(tests/amendment.py) raises the transaminase limit, widens the M3 window, removes ELIG-IN10 and
adds ELIG-IN12 at once. Replay switches at the effective date (earlier at the site that adopted
it early), ``protocol diff`` lists exactly those four changes, the specification shows v1.1, and
every finding names the version it was decided under.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

import pytest

from contracts import Category, Finding, FindingSuperseded, ParticipantEvent, Severity
from events.replay import Replay
from protocol import VersionError, amended
from protocol.coverage import gaps
from protocol.engine import engine_for
from protocol.fingerprint import fingerprint
from protocol.kit import kit_of
from protocol.nct06904729 import PROTOCOL
from protocol.registry import versions_for
from protocol.versions import Judge
from services.protocol_kit.cli import report_diff, run_scenarios
from services.protocol_kit.spec import render_markdown, spec_context
from tests import amendment
from tests.amendment import EXPECTED, HISTORY, V11, stream
from tests.journey import journey


def replayed(events: list[ParticipantEvent], judge: Judge) -> list[Finding]:
    replay = Replay(judge)
    return [f for e in events for f in replay.feed(e) if not isinstance(f, FindingSuperseded)]


def test_replay_switches_at_the_effective_date_and_earlier_at_the_early_site() -> None:
    found = replayed(stream(), HISTORY)
    assert [(f.participant_id, f.rule_id, f.protocol_version) for f in found] == EXPECTED
    for f in found:
        assert f.ruleset_fingerprint == fingerprint(HISTORY.version(f.protocol_version))
    # The same stream under v1.0 alone: every participant gets v1.0's three findings.
    only_v10 = replayed(stream(), versions_for("NCT06904729"))
    assert {(f.rule_id, f.protocol_version) for f in only_v10} == {
        ("ELIG-IN09", "1.0"),
        ("ELIG-IN10", "1.0"),
        ("VISIT-01", "1.0"),
    }
    assert len(only_v10) == 12


def test_a_finding_keeps_its_id_whichever_version_raised_it() -> None:
    """Finding ids derive from study, participant, rule and trigger, never from the version."""
    missing = journey(labs={"alt": None})
    (old,) = replayed(missing, PROTOCOL)
    (new,) = replayed(missing, V11.protocol)
    assert old.deviation_id == new.deviation_id  # type: ignore[union-attr]
    assert (old.protocol_version, new.protocol_version) == ("1.0", "1.1")
    assert (old.ruleset_fingerprint, new.ruleset_fingerprint) == (fingerprint(PROTOCOL), fingerprint(V11.protocol))


ALT = "alt"
M3 = "M3"


@pytest.mark.parametrize(
    ("labs", "visits", "v10", "v11"),
    [
        ({ALT: (120, "U/L", 40)}, {}, [], []),  # 3.0 x ULN: inside both limits
        ({ALT: (121, "U/L", 40)}, {}, ["ELIG-IN09"], []),  # 3.025: above v1.0's, inside v1.1's
        ({ALT: (200, "U/L", 40)}, {}, ["ELIG-IN09"], []),  # 5.0: v1.1's limit, inside
        ({ALT: (201, "U/L", 40)}, {}, ["ELIG-IN09"], ["ELIG-IN09"]),  # 5.025: above both
        ({}, {M3: 97}, [], []),  # v1.0's last day of the M3 window
        ({}, {M3: 98}, ["VISIT-01"], []),
        ({}, {M3: 104}, ["VISIT-01"], []),  # v1.1's last day
        ({}, {M3: 105}, ["VISIT-01"], ["VISIT-01"]),
        ({}, {M3: 76}, ["VISIT-01"], []),  # v1.1's first day
        ({}, {M3: 75}, ["VISIT-01"], ["VISIT-01"]),
        ({"ana": ("1:40", "{titer}", None)}, {}, ["ELIG-IN10"], []),  # removed in v1.1
        ({"hemoglobin": (79.9, "g/L", None)}, {}, [], ["ELIG-IN12"]),  # added in v1.1
        ({"hemoglobin": (80, "g/L", None)}, {}, [], []),
    ],
)
def test_each_version_decides_with_its_own_limits_windows_and_rules(
    labs: dict[str, tuple[float | str, str | None, float | None]],
    visits: dict[str, int],
    v10: list[str],
    v11: list[str],
) -> None:
    events = journey(labs=labs, visits=visits)
    assert [f.rule_id for f in replayed(events, PROTOCOL)] == v10
    assert [f.rule_id for f in replayed(events, V11.protocol)] == v11


def test_the_amendment_leaves_v1_0_as_it_was_and_has_its_own_engine() -> None:
    assert PROTOCOL.parameter("transaminase_max_uln").value == 3.0
    assert [w.window_days for w in PROTOCOL.schedule if w.code == M3] == [7]
    assert "ELIG-IN10" in {r.rule_id for r in PROTOCOL.rules}
    assert "ELIG-IN12" not in {r.rule_id for r in PROTOCOL.rules}
    v11 = V11.protocol
    assert [w.window_days for w in v11.schedule if w.code == M3] == [14]
    assert v11.parameter("visit_schedule").value == v11.schedule
    assert [r.rule_id for r in v11.rules][-1] == "ELIG-IN12"
    assert engine_for(v11) is not engine_for(PROTOCOL)
    assert engine_for(v11).protocol is v11
    assert fingerprint(v11) != fingerprint(PROTOCOL)


def test_protocol_diff_lists_exactly_the_four_changes() -> None:
    out = io.StringIO()
    assert report_diff(PROTOCOL, V11.protocol, "text", out) == 1
    assert out.getvalue().splitlines() == [
        "rule ELIG-IN10 removed",
        "rule ELIG-IN12 added",
        "parameter transaminase_max_uln changed",
        "    value: 3.0 -> 5.0",
        "visit M3 changed",
        "    window_days: 7 -> 14",
        "NCT06904729 v1.0 -> v1.1: 4 change(s)",
    ]
    out = io.StringIO()
    report_diff(PROTOCOL, V11.protocol, "json", out)
    assert [(c["what"], c["name"], c["change"]) for c in json.loads(out.getvalue())["changes"]] == [
        ("rule", "ELIG-IN10", "removed"),
        ("rule", "ELIG-IN12", "added"),
        ("parameter", "transaminase_max_uln", "changed"),
        ("visit", "M3", "changed"),
    ]


def test_the_specification_shows_the_new_version_and_check_names_its_gaps() -> None:
    outcomes = run_scenarios([V11])
    kit = kit_of(V11.protocol)
    markdown = render_markdown(spec_context(V11, kit.criteria, outcomes), dt.date(2026, 1, 1))
    assert markdown.startswith("# Edit-check specification: NCT06904729 v1.1\n")
    assert "effective from 2026-01-01; at SH-02 from 2025-07-01" in markdown
    assert f"fingerprint {fingerprint(V11.protocol)}" in markdown
    assert "## ELIG-IN12: Enrolled with a haemoglobin below 80 g/L" in markdown
    assert "## ELIG-IN10" not in markdown
    assert "| transaminase_max_uln | 5.0 | x ULN |" in markdown
    assert "alt_uln_multiple is above 5.0 (transaminase_max_uln)" in markdown
    # v1.0's scenarios of the old limit and the removed rule fail under v1.1, and say so.
    failing = {o.scenario.name for o in outcomes if not o.passed}
    assert "ALT above 3x ULN is quoted with the other organ-function values" in failing
    assert "ANA below 1:80 (1:40)" in failing
    assert all(o.version == "1.1" for o in outcomes)
    # protocol check would refuse v1.1 until its new rule has scenarios.
    assert gaps(V11.protocol, kit.scenarios(), kit.criteria)[:2] == [
        "NCT06904729 v1.1: rule ELIG-IN12 has no scenario that raises it",
        "NCT06904729 v1.1: rule ELIG-IN12 has no @boundary scenario that does not raise it (the value just inside)",
    ]


def test_severity_and_category_change_and_a_chained_amendment_keeps_what_came_before() -> None:
    v12 = amended(
        V11.protocol,
        "1.2",
        dt.date(2026, 6, 1),
        {"sledai_min": 6},
        rule_changes={"DOSE-01": {"severity": Severity.MINOR, "category": Category.STUDY_PROCEDURE}},
    ).protocol
    assert "ELIG-IN10" not in {r.rule_id for r in v12.rules}  # v1.1 removed it
    assert v12.rule("ELIG-IN12") is V11.protocol.rule("ELIG-IN12")  # v1.1 added it
    assert v12.parameter("transaminase_max_uln").value == 5.0
    assert [w.window_days for w in v12.schedule if w.code == M3] == [14]
    assert v12.rule("ELIG-IN04").term == "Enrolled with a SLEDAI-2K score below 6"
    out = io.StringIO()
    report_diff(V11.protocol, v12, "text", out)
    assert out.getvalue().splitlines()[:4] == [
        "rule ELIG-IN04 changed",
        "    condition: the event is ParticipantEnrolled and sledai_2k is below 8 (sledai_min) -> "
        "the event is ParticipantEnrolled and sledai_2k is below 6 (sledai_min)",
        "    term: Enrolled with a SLEDAI-2K score below 8 -> Enrolled with a SLEDAI-2K score below 6",
        "    parameter_values: {'sledai_min': 8, 'screening_window_days': 28} -> "
        "{'sledai_min': 6, 'screening_window_days': 28}",
    ]
    assert "    severity: important -> minor" in out.getvalue()
    (overdose,) = replayed(journey(total_cells=20_000_000.0), v12)  # 1.45 x the low dose
    assert (overdose.rule_id, overdose.severity, overdose.category, overdose.protocol_version) == (  # type: ignore[union-attr]
        "DOSE-01",
        Severity.MINOR,
        Category.STUDY_PROCEDURE,
        "1.2",
    )
    assert [f.rule_id for f in replayed(journey(sledai=7), v12)] == []
    assert [f.rule_id for f in replayed(journey(sledai=5), v12)] == ["ELIG-IN04"]


def test_v1_0_rebuilt_by_its_builder_is_the_same_rule_set() -> None:
    assert PROTOCOL.rebuild is not None
    again = PROTOCOL.rebuild("1.0", PROTOCOL.parameters)
    assert again is not PROTOCOL
    assert fingerprint(again) == fingerprint(PROTOCOL)


def test_an_amendment_of_a_schedule_must_keep_its_type() -> None:
    with pytest.raises(VersionError, match="is not a tuple"):
        amended(PROTOCOL, "1.1", dt.date(2026, 1, 1), {"visit_schedule": list(PROTOCOL.schedule)})
    with pytest.raises(VersionError, match="has no rule 'ELIG-IN10'"):
        amended(V11.protocol, "1.2", dt.date(2026, 1, 1), remove_rules=["ELIG-IN10"])
    replaced = dataclasses.replace(amendment.ADDED, term="Enrolled with a haemoglobin below 80 g/L (Hb)")
    v12 = amended(V11.protocol, "1.2", dt.date(2026, 1, 1), remove_rules=["ELIG-IN12"], add_rules=[replaced])
    assert v12.protocol.rule("ELIG-IN12").term.endswith("(Hb)")
