"""Protocol versions: each event is decided under the version in force at its local date and site,
and every finding names that version and its ruleset fingerprint.

The amendment here (v1.1, a 42-day screening window) exists only in these tests: NCT06904729's
registry record shows none, so v1.0 is the only version shipped.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from contracts import Finding, FindingSuperseded, ParticipantEvent, Severity
from events import process
from events.replay import Replay
from protocol import ParticipantState, Protocol, ProtocolHistory, Version, VersionError, amended
from protocol.engine import engine_for
from protocol.fingerprint import canonical, fingerprint
from protocol.nct06904729 import PROTOCOL
from protocol.registry import protocol_for, versions_for
from tests.builders import event
from tests.journey import at, journey

ENROLLED_ON = dt.date(2025, 11, 13)  # journey(): consent on 2025-11-03, enrollment on day 10, at +08:00

OUTDATED_LABS = journey(consent_day=-30, lab_day=-19)
"""Screening labs 29 days before enrollment: outdated under a 28-day window, fine under 42."""

EARLY_ENROLLMENT = [
    *journey(consent_day=-30, lab_day=-19, eligible=None, enroll=False),
    event(
        "EligibilityConfirmed", {"investigator": "inv-1", "eligible": True}, participant="P-0001", at=at(10, "06:00:00")
    ),
    event("ParticipantEnrolled", {"arm": "low_dose"}, participant="P-0001", at=at(10, "07:00:00")),
]
"""The same, enrolled at 07:00 +08:00: 23:00 UTC the day before."""


def amendment(effective: dt.date, at_sites: dict[str, dt.date] | None = None) -> Version:
    return amended(PROTOCOL, "1.1", effective, {"screening_window_days": 42}, at_sites=at_sites)


def history(effective: dt.date, at_sites: dict[str, dt.date] | None = None) -> ProtocolHistory:
    return versions_for("NCT06904729").with_version(amendment(effective, at_sites))


def replayed(events: Sequence[ParticipantEvent], judge: ProtocolHistory) -> list[Finding]:
    replay = Replay(judge)
    return [f for e in events for f in replay.feed(e) if not isinstance(f, FindingSuperseded)]


DAY = dt.timedelta(days=1)

CASES = [
    ("no amendment", versions_for("NCT06904729"), OUTDATED_LABS, [("ELIG-MISSING", "1.0", 28)]),
    ("amendment effective the day after", history(ENROLLED_ON + DAY), OUTDATED_LABS, [("ELIG-MISSING", "1.0", 28)]),
    ("amendment effective that day", history(ENROLLED_ON), OUTDATED_LABS, []),
    ("amendment effective before", history(ENROLLED_ON - 30 * DAY), OUTDATED_LABS, []),
    ("amended later, earlier at the site", history(ENROLLED_ON + DAY, {"GZ-01": ENROLLED_ON}), OUTDATED_LABS, []),
    (
        "amended earlier, later at the site",
        history(ENROLLED_ON, {"GZ-01": ENROLLED_ON + DAY}),
        OUTDATED_LABS,
        [("ELIG-MISSING", "1.0", 28)],
    ),
    (
        "amended at another site only",
        history(ENROLLED_ON + 400 * DAY, {"SH-02": ENROLLED_ON}),
        OUTDATED_LABS,
        [("ELIG-MISSING", "1.0", 28)],
    ),
    # 07:00 +08:00 on the effective date is the day before in UTC: the local date decides.
    ("local date, not UTC", history(ENROLLED_ON), EARLY_ENROLLMENT, []),
    ("local date, the day before", history(ENROLLED_ON + DAY), EARLY_ENROLLMENT, [("ELIG-MISSING", "1.0", 28)]),
]


@pytest.mark.parametrize(("judge", "events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_event_is_decided_under_the_version_in_force(
    judge: ProtocolHistory, events: list[ParticipantEvent], expected: list[tuple[str, str, int]]
) -> None:
    found = replayed(events, judge)
    assert [(f.rule_id, f.protocol_version, f.evidence["screening_window_days"]) for f in found] == expected
    for f in found:
        assert f.ruleset_fingerprint == fingerprint(judge.version(f.protocol_version))


def test_the_same_stream_gives_different_findings_before_and_after_the_amendment() -> None:
    participants = [
        [
            e.model_copy(update={"occurred_at": e.occurred_at + shift, "recorded_at": e.recorded_at + shift})
            for e in journey(pid=pid, consent_day=-30, lab_day=-19)
        ]
        for pid, shift in (("P-0001", dt.timedelta(0)), ("P-0002", 60 * DAY))
    ]
    amended_from = ENROLLED_ON + 30 * DAY  # P-0001 enrolled before it, P-0002 after
    found = replayed([e for p in participants for e in p], history(amended_from))
    assert [(f.participant_id, f.rule_id, f.protocol_version) for f in found] == [("P-0001", "ELIG-MISSING", "1.0")]


def test_process_under_a_history_keeps_one_state_across_versions() -> None:
    """Raised once per participant stays raised when the version changes between two triggers."""
    judge = history(ENROLLED_ON + DAY)
    clean = journey(enroll=False, treat=False)
    enrollments = [
        event("ParticipantEnrolled", {"arm": "low_dose"}, participant="P-0001", at=at(10)),
        event("ParticipantEnrolled", {"arm": "low_dose"}, participant="P-0001", at=at(11)),
    ]
    state = ParticipantState("P-0001")
    for e in [*clean, *enrollments]:
        state = process(state, e, judge).state
    assert state.enrollment is not None


def test_a_deviation_keeps_its_id_across_versions_and_only_the_fingerprint_differs() -> None:
    missing_alt = journey(labs={"alt": None})
    old = replayed(missing_alt, versions_for("NCT06904729"))
    new = replayed(missing_alt, history(ENROLLED_ON - 30 * DAY))
    assert [f.rule_id for f in old] == [f.rule_id for f in new] == ["ELIG-MISSING"]
    assert [f.deviation_id for f in old] == [f.deviation_id for f in new]  # type: ignore[union-attr]
    assert old[0].ruleset_fingerprint != new[0].ruleset_fingerprint
    assert (old[0].protocol_version, new[0].protocol_version) == ("1.0", "1.1")


def test_the_registry_ships_v1_0_only_and_keeps_protocol_for() -> None:
    shipped = versions_for("NCT06904729")
    assert [(v.name, v.effective, v.at_sites) for v in shipped.versions] == [("1.0", None, ())]
    assert protocol_for("NCT06904729") is shipped.current is PROTOCOL
    assert shipped.version("1.0") is PROTOCOL
    with pytest.raises(VersionError, match=r"no protocol version '9\.9'"):
        shipped.version("9.9")


def test_an_amendment_is_a_rule_set_of_its_own_and_leaves_the_base_as_it_was() -> None:
    v11 = amendment(ENROLLED_ON).protocol
    assert (v11.version, v11.parameter("screening_window_days").value) == ("1.1", 42)
    assert PROTOCOL.parameter("screening_window_days").value == 28
    assert canonical_rules(v11) == canonical_rules(PROTOCOL)  # the window decides facts, not conditions
    assert v11.schedule == PROTOCOL.schedule
    assert engine_for(v11) is not engine_for(PROTOCOL)
    assert engine_for(v11).protocol is v11
    assert engine_for(PROTOCOL).protocol is PROTOCOL


def canonical_rules(protocol: Protocol) -> list[object]:
    return json.loads(canonical(protocol))["rules"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("changes", "rules", "error"),
    [
        ({"no_such_parameter": 1}, {}, "has no parameter 'no_such_parameter'"),
        ({"screening_window_days": 42.0}, {}, "is not a int"),
        ({}, {}, "at least one parameter or rule"),
        ({}, {"remove_rules": ["NO-SUCH"]}, "has no rule 'NO-SUCH'"),
        ({}, {"rule_changes": {"NO-SUCH": {"severity": Severity.MINOR}}}, "has no rule 'NO-SUCH'"),
        ({}, {"rule_changes": {"DOSE-01": {"rule_id": "DOSE-02"}}}, "rule_id cannot be changed"),
        ({}, {"rule_changes": {"DOSE-01": {"colour": "red"}}}, "colour cannot be changed"),
        ({}, {"rule_changes": {"DOSE-01": {"severity": None}}}, "a deviation has a category and a severity"),
        ({}, {"remove_rules": ["DOSE-01"], "rule_changes": {"DOSE-01": {"term": "x"}}}, "both removed and changed"),
        ({}, {"add_rules": [PROTOCOL.rule("DOSE-01")]}, "already has a rule DOSE-01"),
        (
            {},
            {"add_rules": [dataclasses.replace(PROTOCOL.rule("DOSE-01"), rule_id="DOSE-02", parameters=("nope",))]},
            "DOSE-02 names unknown parameters",
        ),
    ],
)
def test_an_amendment_that_could_not_take_effect_is_refused(
    changes: dict[str, object], rules: dict[str, Any], error: str
) -> None:
    with pytest.raises(VersionError, match=error):
        amended(PROTOCOL, "1.1", ENROLLED_ON, changes, **rules)


def test_a_protocol_without_a_builder_cannot_change_its_parameters() -> None:
    by_hand = dataclasses.replace(PROTOCOL, rebuild=None)
    with pytest.raises(VersionError, match="has no builder"):
        amended(by_hand, "1.1", ENROLLED_ON, {"sledai_min": 6})
    assert amended(by_hand, "1.1", ENROLLED_ON, remove_rules=["RELAPSE"]).protocol.rules == PROTOCOL.rules[:-1]


V11 = amendment(ENROLLED_ON)


@pytest.mark.parametrize(
    ("versions", "error"),
    [
        ([], "at least one version"),
        ([V11], "first version is in force from the beginning"),
        ([Version(PROTOCOL), Version(PROTOCOL)], "named twice"),
        ([Version(PROTOCOL), Version(V11.protocol)], "only the first version"),
        (
            [
                Version(PROTOCOL),
                V11,
                Version(amended(PROTOCOL, "1.2", ENROLLED_ON - DAY, {"gcsf_free_days": 7}).protocol, ENROLLED_ON - DAY),
            ],
            "before v1.1",
        ),
        (
            [
                Version(PROTOCOL),
                amendment(ENROLLED_ON, {"GZ-01": ENROLLED_ON}),
                amended(PROTOCOL, "1.2", ENROLLED_ON, {"gcsf_free_days": 7}, at_sites={"GZ-01": ENROLLED_ON - DAY}),
            ],
            "effective at GZ-01",
        ),
    ],
)
def test_a_history_that_could_not_decide_every_event_is_refused(versions: list[Version], error: str) -> None:
    with pytest.raises(VersionError, match=error):
        ProtocolHistory(versions)


FINGERPRINT_SCRIPT = """
import datetime as dt
from protocol.fingerprint import canonical, fingerprint
from protocol.nct06904729 import PROTOCOL
from protocol.versions import amended
v = amended(PROTOCOL, "1.1", dt.date(2025, 11, 13), {"screening_window_days": 42})
print(fingerprint(PROTOCOL), fingerprint(v.protocol))
"""


def test_the_fingerprint_is_the_same_in_every_process() -> None:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outputs = [
        subprocess.run(
            [sys.executable, "-c", FINGERPRINT_SCRIPT],
            cwd=root,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        for seed in ("1", "2")
    ]
    assert outputs[0] == outputs[1]
    v10, v11 = outputs[0]
    assert v10 == fingerprint(PROTOCOL)
    assert len(v10) == 64
    assert int(v10, 16) >= 0
    assert v11 == fingerprint(V11.protocol) != v10
