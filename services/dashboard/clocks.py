"""Safety clocks: when an alert's report is due, whether it is overdue, and how old a finding is.

Pure functions of a finding's times and an injected ``now``: no I/O, no reading of the real
clock, so every boundary is a table-driven test. The reporting clocks themselves are the
protocol package's (``protocol.kit.reporting_clocks``).

**Awareness time.** Every clock and "days open" count from the triggering event's time, the
finding's ``occurred_at`` (DVSTDTC). TrialGuard cannot see when a person became aware of the
event; the event's own time is the earliest moment anyone could have, so a clock computed from it
may run early, never late. The finding carries it, so replays give the same clocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import structlog

from protocol.kit import KitError, reporting_clocks
from protocol.model import Protocol
from protocol.reporting import ReportingClock, ReportingClockError

log = structlog.get_logger("trialguard.dashboard.clocks")

DAY: Final = dt.timedelta(days=1)

AWARENESS_NOTE: Final = (
    "Days open, ageing and reporting clocks count from the triggering event's time (its occurred_at, "
    "DVSTDTC): the earliest moment anyone could have been aware of it, so a clock may run early, never late."
)
"""What the pages say about where the clocks start."""

AGE_BUCKETS: Final = (("0–2 days", 0, 2), ("3–7 days", 3, 7), ("8–30 days", 8, 30), (">30 days", 31, None))
"""Ageing buckets of unresolved findings: (label, first day, last day or None), by whole days open."""

UNRESOLVED: Final = ("open", "acknowledged")


@dataclass(frozen=True)
class ClockReading:
    """Where a finding stands against its clocks at ``now``.

    Attributes:
        due_at: when the alert's report is due (None: no reporting clock, e.g. a deviation).
        overdue: an unresolved finding past its due time (due exactly now is not yet overdue).
        since_event: time from the triggering event to now.
        since_raised: time from when TrialGuard raised the finding to now.
        days_open: whole days from the triggering event to its resolution or closure (to now while
            unresolved); never negative.
        age_bucket: the ageing bucket of ``days_open``.
        severity: the alert's severity in words from its clock (None without a clock).
    """

    due_at: dt.datetime | None
    overdue: bool
    since_event: dt.timedelta
    since_raised: dt.timedelta
    days_open: int
    age_bucket: str
    severity: str | None


def whole_days(start: dt.datetime, end: dt.datetime) -> int:
    """Whole days from ``start`` to ``end`` (rounded down; 0 when ``end`` is not after ``start``)."""
    return max(0, (end - start) // DAY)


def age_bucket(days: int) -> str:
    """The label of the ageing bucket that holds ``days`` whole days open."""
    for label, first, last in AGE_BUCKETS:
        if days >= first and (last is None or days <= last):
            return label
    raise ValueError(f"days open cannot be negative: {days}")


def is_overdue(due_at: dt.datetime | None, now: dt.datetime, *, unresolved: bool = True) -> bool:
    """Whether a report due at ``due_at`` is overdue at ``now``: strictly past due and unresolved.

    Dash-study's "overdue" queue and this module share this one definition.
    """
    return unresolved and due_at is not None and now > due_at


def read_clock(
    clock: ReportingClock | None,
    *,
    occurred_at: dt.datetime,
    raised_at: dt.datetime,
    status: str,
    status_at: dt.datetime | None,
    superseded: bool,
    now: dt.datetime,
) -> ClockReading:
    """A finding's clocks at ``now``.

    Args:
        clock: the reporting clock of the finding's rule (None for a deviation).
        occurred_at: the triggering event's time, where clocks start.
        raised_at: when TrialGuard raised the finding.
        status: the review status (open, acknowledged, resolved, closed).
        status_at: when the status last changed (ends "days open" once resolved or closed).
        superseded: a lab correction superseded the finding: it no longer needs a report.
        now: the time to read the clocks at (injected; never read here).
    """
    unresolved = status in UNRESOLVED and not superseded
    ended = now if unresolved or status_at is None else status_at
    days = whole_days(occurred_at, ended)
    due_at = None if clock is None else clock.due_at(occurred_at)
    return ClockReading(
        due_at=due_at,
        overdue=is_overdue(due_at, now, unresolved=unresolved),
        since_event=now - occurred_at,
        since_raised=now - raised_at,
        days_open=days,
        age_bucket=age_bucket(days),
        severity=None if clock is None else clock.severity,
    )


def read_row_clock(row: Mapping[str, Any], clocks: Mapping[str, ReportingClock], now: dt.datetime) -> ClockReading:
    """``read_clock`` for a row of the read model's findings table (its text times parsed)."""
    status_at = row.get("status_at")
    return read_clock(
        clocks.get(row["rule_id"]) if row["kind"] == "alert" else None,
        occurred_at=dt.datetime.fromisoformat(row["occurred_utc"]),
        raised_at=dt.datetime.fromisoformat(row["raised_at"]),
        status=row["status"],
        status_at=dt.datetime.fromisoformat(status_at) if status_at else None,
        superseded=bool(row.get("superseded_by")),
        now=now,
    )


def period(delta: dt.timedelta) -> str:
    """A declared reporting period as a protocol states it: "24 hours", "7 days", "90 minutes"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds % size == 0 and seconds >= size and not (unit == "day" and seconds // size == 1):
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return span(delta)


def span(delta: dt.timedelta) -> str:
    """A duration for people: "3 d 4 h", "5 h 12 min", "40 min"; "-" before a negative one."""
    sign, delta = ("-", -delta) if delta < dt.timedelta(0) else ("", delta)
    minutes = int(delta.total_seconds()) // 60
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min"


def overdue_condition(clocks: Mapping[str, ReportingClock], now: dt.datetime) -> tuple[str, dict[str, str]]:
    """The SQL condition (findings table) for the alerts overdue at ``now``, and its parameters.

    The same definition as ``is_overdue``: unresolved, not superseded, and the triggering event's
    time plus the rule's clock strictly before ``now``. "0" (nothing) when no rule has a clock.
    """
    parts, values = [], {}
    for n, (rule_id, clock) in enumerate(sorted(clocks.items())):
        parts.append(f"(rule_id = :clock_rule_{n} AND occurred_utc < :clock_cut_{n})")
        values[f"clock_rule_{n}"] = rule_id
        values[f"clock_cut_{n}"] = _whole_second_ceiling(now - clock.within)
    if not parts:
        return "0", {}
    status = "status IN ('open', 'acknowledged') AND superseded_by IS NULL AND kind = 'alert'"
    return f"({status} AND ({' OR '.join(parts)}))", values


def overdue_cutoffs(clocks: Mapping[str, ReportingClock], now: dt.datetime) -> tuple[tuple[str, str], ...]:
    """(rule id, event time before which its unresolved alert is overdue at ``now``), by rule id:
    the same instants as ``overdue_condition`` and ``is_overdue``."""
    return tuple((rule_id, _whole_second_ceiling(now - clock.within)) for rule_id, clock in sorted(clocks.items()))


def _whole_second_ceiling(moment: dt.datetime) -> str:
    # occurred_utc is whole seconds, and for a whole second x, x < c exactly when x < ceil(c): the
    # text comparison in SQL then agrees with ``is_overdue`` to the microsecond.
    moment = moment.astimezone(dt.UTC)
    if moment.microsecond:
        moment = moment.replace(microsecond=0) + dt.timedelta(seconds=1)
    return moment.isoformat(timespec="seconds")


def with_clocks(
    rows: list[dict[str, Any]], clocks: Mapping[str, ReportingClock], now: dt.datetime
) -> list[dict[str, Any]]:
    """The rows, each with its ``clock`` (a ``ClockReading``) added, for the pages."""
    for row in rows:
        row["clock"] = read_row_clock(row, clocks, now)
    return rows


def clock_fields(reading: ClockReading) -> dict[str, Any]:
    """A reading as the API shows it: times as UTC ISO text, durations in whole seconds."""
    return {
        "due_at": None if reading.due_at is None else reading.due_at.astimezone(dt.UTC).isoformat(),
        "overdue": reading.overdue,
        "seconds_since_event": int(reading.since_event.total_seconds()),
        "seconds_since_raised": int(reading.since_raised.total_seconds()),
        "days_open": reading.days_open,
        "age_bucket": reading.age_bucket,
        "severity": reading.severity,
    }


def detail_context(row: Mapping[str, Any], clocks: Mapping[str, ReportingClock], now: dt.datetime) -> dict[str, Any]:
    """What ``_clock.html`` shows for one finding: its reading, its rule's clock, spans in words."""
    reading = read_row_clock(row, clocks, now)
    clock = clocks.get(row["rule_id"]) if row["kind"] == "alert" else None
    reporting = None
    if clock is not None:
        reporting = {
            "within_text": period(clock.within),
            "report_to": clock.report_to,
            "source": clock.source,
            "assumption": clock.assumption,
        }
    return {
        "clock": reading,
        "reporting": reporting,
        "since_event": span(reading.since_event),
        "since_raised": span(reading.since_raised),
        "since_due": "" if reading.due_at is None else span(now - reading.due_at),
        "awareness_note": AWARENESS_NOTE,
    }


def protocol_clocks(protocol: Protocol) -> Mapping[str, ReportingClock]:
    """The reporting clocks of a protocol version, or none (logged) when its package declares none."""
    try:
        return reporting_clocks(protocol)
    except (KitError, ReportingClockError) as error:
        log.warning("no_reporting_clocks", study=protocol.study_id, reason=str(error))
        return {}
