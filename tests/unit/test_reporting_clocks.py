"""Reporting clocks declared by the protocol packages (protocol.reporting, protocol.kit): one per
alert rule of every installed study, as data, outside the ruleset fingerprint."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from protocol.fingerprint import fingerprint, source_modules
from protocol.kit import reporting_clocks
from protocol.model import Kind
from protocol.registry import protocol_for, studies
from protocol.reporting import ReportingClock, ReportingClockError, clocks_by_rule, hours

AT = dt.datetime(2025, 3, 1, 9, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("study", ["NCT06904729", "NCT06946485"])
def test_every_alert_rule_of_each_study_has_a_clock_and_nothing_else_has(study: str) -> None:
    protocol = protocol_for(study)
    clocks = reporting_clocks(protocol)
    assert list(clocks) == [r.rule_id for r in protocol.rules if r.kind is Kind.ALERT]
    for clock in clocks.values():
        # The records state no timelines: every clock says why it was chosen.
        assert all((clock.assumption, clock.source, clock.severity, clock.report_to))


@pytest.mark.parametrize("study", ["NCT06904729", "NCT06946485"])
def test_a_serious_adverse_event_is_due_24_hours_after_the_event(study: str) -> None:
    clock = reporting_clocks(protocol_for(study))["SAFETY-SAE"]
    assert clock.due_at(AT) == AT + dt.timedelta(hours=24)


def test_every_installed_study_declares_its_clocks() -> None:
    for study in studies():
        assert reporting_clocks(protocol_for(study))


@pytest.mark.parametrize("study", ["NCT06904729", "NCT06946485"])
def test_the_clocks_are_not_part_of_the_ruleset_fingerprint(study: str) -> None:
    protocol = protocol_for(study)
    assert not [name for name in source_modules(protocol) if ".kit" in name or name == "protocol.reporting"]
    assert fingerprint(protocol) == fingerprint(protocol)  # computed, and stable


def test_clocks_that_do_not_fit_the_protocol_are_refused_naming_the_rule() -> None:
    protocol = protocol_for("NCT06904729")
    clocks = list(reporting_clocks(protocol).values())
    with pytest.raises(ReportingClockError, match="without a reporting clock: RELAPSE"):
        clocks_by_rule(protocol, [c for c in clocks if c.rule_id != "RELAPSE"])
    with pytest.raises(ReportingClockError, match="ELIG-IN09, not alert rules"):
        clocks_by_rule(protocol, [*clocks, dataclasses.replace(clocks[0], rule_id="ELIG-IN09")])
    with pytest.raises(ReportingClockError, match="SAFETY-SAE declared twice"):
        clocks_by_rule(protocol, [*clocks, next(c for c in clocks if c.rule_id == "SAFETY-SAE")])


@pytest.mark.parametrize("within", [dt.timedelta(0), hours(-1)])
def test_a_clock_needs_a_positive_time(within: dt.timedelta) -> None:
    with pytest.raises(ReportingClockError, match="positive"):
        ReportingClock("SAFETY-SAE", within, severity="serious", report_to="sponsor", source="s")
