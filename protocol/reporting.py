"""Reporting clocks of safety alerts: how long after awareness each alert kind must be reported.

A protocol package declares one ``ReportingClock`` per alert rule, as data, in its kit
(``protocol.x.kit.safety.CLOCKS``; see ``protocol.kit.reporting_clocks``). The clocks say nothing
about whether an alert is raised, so they are not part of a version's rules or its ruleset
fingerprint: findings are the same with or without them. The dashboard reads them to show each
alert's due time and whether it is overdue.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from protocol.model import Kind, Protocol


class ReportingClockError(ValueError):
    """A package's clocks do not fit its protocol: a clock for no alert, or an alert without one."""


@dataclass(frozen=True)
class ReportingClock:
    """The reporting clock of one alert rule.

    The clock starts at the triggering event's time (its ``occurred_at``): the finding carries it,
    and it is the earliest moment anyone could have known, so a clock never runs late.

    Attributes:
        rule_id: the alert rule the clock belongs to.
        within: how long after the clock starts the report is due.
        severity: how the alert is ranked where a deviation shows its ICH E3 severity, in words
            (e.g. "serious: expedited").
        report_to: who must receive the report, in words.
        source: where the clock comes from (a regulation, the protocol's section).
        assumption: why this clock was chosen, when the trial record does not state one.
    """

    rule_id: str
    within: dt.timedelta
    severity: str
    report_to: str
    source: str
    assumption: str | None = None

    def __post_init__(self) -> None:
        if self.within <= dt.timedelta(0):
            raise ReportingClockError(f"{self.rule_id}: a reporting clock needs a positive time, not {self.within}")
        if not self.severity.strip():
            raise ReportingClockError(f"{self.rule_id}: a reporting clock needs a severity in words")

    def due_at(self, starts_at: dt.datetime) -> dt.datetime:
        """When the report is due for an alert whose clock started at ``starts_at``."""
        return starts_at + self.within


def hours(count: float) -> dt.timedelta:
    """A clock's time in hours (``hours(24)``), as protocols write it."""
    return dt.timedelta(hours=count)


def clocks_by_rule(protocol: Protocol, clocks: Iterable[ReportingClock]) -> Mapping[str, ReportingClock]:
    """The clocks by rule id, checked against the protocol's alert rules.

    Raises:
        ReportingClockError: a rule id declared twice, a clock for a rule that is not an alert of
            the protocol, or an alert rule without a clock; the message names each.
    """
    found: dict[str, ReportingClock] = {}
    for clock in clocks:
        if clock.rule_id in found:
            raise ReportingClockError(f"{protocol.study_id}: reporting clock of {clock.rule_id} declared twice")
        found[clock.rule_id] = clock
    alerts = [r.rule_id for r in protocol.rules if r.kind is Kind.ALERT]
    if stray := sorted(set(found) - set(alerts)):
        raise ReportingClockError(
            f"{protocol.study_id} v{protocol.version}: reporting clocks for {', '.join(stray)}, not alert rules"
        )
    if missing := [rule for rule in alerts if rule not in found]:
        raise ReportingClockError(
            f"{protocol.study_id} v{protocol.version}: alert rules without a reporting clock: {', '.join(missing)}"
        )
    return MappingProxyType({rule: found[rule] for rule in alerts})
