"""Safety clocks (services/dashboard/clocks.py, ageing.py): every boundary, table-driven, with an
injected "now" (no real time anywhere in these assertions)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence

import pytest

from protocol.reporting import ReportingClock, hours
from services.dashboard.ageing import ageing
from services.dashboard.clocks import (
    AGE_BUCKETS,
    age_bucket,
    is_overdue,
    overdue_condition,
    read_clock,
    span,
    whole_days,
)

EVENT = dt.datetime(2026, 3, 2, 8, 15, tzinfo=dt.UTC)
RAISED = EVENT + dt.timedelta(minutes=3)
SAE = ReportingClock("SAFETY-SAE", hours(24), severity="serious: expedited", report_to="the sponsor", source="ICH")
RELAPSE = ReportingClock("RELAPSE", hours(168), severity="outcome: routine", report_to="the team", source="record")
CLOCKS = {"SAFETY-SAE": SAE, "RELAPSE": RELAPSE}
S = dt.timedelta(seconds=1)
US = dt.timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("after_event", "status", "superseded", "overdue"),
    [
        (hours(0), "open", False, False),
        (hours(23), "open", False, False),
        (hours(24) - US, "open", False, False),
        (hours(24), "open", False, False),  # due exactly now: not yet overdue
        (hours(24) + US, "open", False, True),  # just past
        (hours(24) + S, "acknowledged", False, True),
        (hours(24) + S, "resolved", False, False),  # resolved: no longer waiting
        (hours(24) + S, "closed", False, False),
        (hours(24) + S, "open", True, False),  # superseded by a lab correction
        (hours(400), "open", False, True),
    ],
)
def test_a_serious_adverse_event_is_due_24_hours_after_its_event(
    after_event: dt.timedelta, status: str, superseded: bool, overdue: bool
) -> None:
    now = EVENT + after_event
    reading = read_clock(
        SAE, occurred_at=EVENT, raised_at=RAISED, status=status, status_at=None, superseded=superseded, now=now
    )
    assert reading.due_at == EVENT + hours(24)
    assert reading.overdue is overdue
    assert reading.since_event == after_event
    assert reading.since_raised == now - RAISED
    assert reading.severity == "serious: expedited"


def test_a_deviation_has_no_due_time_and_is_never_overdue() -> None:
    reading = read_clock(
        None,
        occurred_at=EVENT,
        raised_at=RAISED,
        status="open",
        status_at=None,
        superseded=False,
        now=EVENT + hours(900),
    )
    assert (reading.due_at, reading.overdue, reading.severity) == (None, False, None)
    assert reading.days_open == 37


@pytest.mark.parametrize(
    ("after_event", "days"),
    [
        (dt.timedelta(0), 0),
        (hours(24) - S, 0),
        (hours(24), 1),
        (dt.timedelta(days=3) - US, 2),
        (dt.timedelta(days=3), 3),
        (-hours(5), 0),  # an event time after "now" (a clock skew upstream) never counts negative
    ],
)
def test_days_open_are_whole_days_from_the_event(after_event: dt.timedelta, days: int) -> None:
    assert whole_days(EVENT, EVENT + after_event) == days


def test_days_open_stop_when_the_finding_is_resolved() -> None:
    reading = read_clock(
        SAE,
        occurred_at=EVENT,
        raised_at=RAISED,
        status="resolved",
        status_at=EVENT + dt.timedelta(days=4, hours=2),
        superseded=False,
        now=EVENT + dt.timedelta(days=60),
    )
    assert (reading.days_open, reading.age_bucket) == (4, "3–7 days")


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(0, "0–2 days"), (2, "0–2 days"), (3, "3–7 days"), (7, "3–7 days"), (8, "8–30 days"), (30, "8–30 days"),
     (31, ">30 days"), (10_000, ">30 days")],
)  # fmt: skip
def test_ageing_buckets(days: int, bucket: str) -> None:
    assert age_bucket(days) == bucket


def test_a_negative_age_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        age_bucket(-1)


@pytest.mark.parametrize(
    ("delta", "text"),
    [(dt.timedelta(minutes=40), "40 min"), (hours(5) + dt.timedelta(minutes=12), "5 h 12 min"),
     (dt.timedelta(days=3, hours=4), "3 d 4 h"), (-hours(2), "-2 h 0 min")],
)  # fmt: skip
def test_spans_read_as_words(delta: dt.timedelta, text: str) -> None:
    assert span(delta) == text


def _table(rows: Sequence[tuple[str, str, dt.datetime, str, str | None]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.row_factory = sqlite3.Row
    db.execute(
        "CREATE TABLE findings (finding_id TEXT, rule_id TEXT, kind TEXT, occurred_utc TEXT, status TEXT,"
        " superseded_by TEXT, site_id TEXT)"
    )
    for n, (rule, kind, occurred, status, superseded) in enumerate(rows):
        db.execute(
            "INSERT INTO findings VALUES (?, ?, ?, ?, ?, ?, 'GZ-01')",
            (str(n), rule, kind, occurred.isoformat(timespec="seconds"), status, superseded),
        )
    return db


@pytest.mark.parametrize(
    "after_due", [-hours(1), -S, -US, dt.timedelta(0), US, dt.timedelta(microseconds=999_999), S, hours(3)]
)
def test_the_sql_overdue_filter_agrees_with_is_overdue_at_every_boundary(after_due: dt.timedelta) -> None:
    db = _table(
        [
            ("SAFETY-SAE", "alert", EVENT, "open", None),
            ("SAFETY-SAE", "alert", EVENT, "resolved", None),
            ("SAFETY-SAE", "alert", EVENT, "open", "corr-1"),
            ("RELAPSE", "alert", EVENT - hours(168) + hours(24), "acknowledged", None),
            ("SEQ-02", "deviation", EVENT - hours(900), "open", None),
        ]
    )
    now = EVENT + hours(24) + after_due
    where, values = overdue_condition(CLOCKS, now)
    found = {row[0] for row in db.execute(f"SELECT finding_id FROM findings WHERE {where}", values)}
    expected = {"0", "3"} if is_overdue(EVENT + hours(24), now) else set()
    assert found == expected


def test_no_clock_means_nothing_is_overdue() -> None:
    db = _table([("SAFETY-SAE", "alert", EVENT, "open", None)])
    where, values = overdue_condition({}, EVENT + hours(1000))
    assert db.execute(f"SELECT count(*) FROM findings WHERE {where}", values).fetchone()[0] == 0


def test_the_overview_ages_unresolved_findings_into_the_same_buckets() -> None:
    now = EVENT + dt.timedelta(days=100, microseconds=250)
    ages = [0, 2, 3, 7, 8, 30, 31, 99]
    rows: list[tuple[str, str, dt.datetime, str, str | None]]
    rows = [("SAFETY-SAE", "alert", now - dt.timedelta(days=d), "open", None) for d in ages]
    rows += [("SEQ-02", "deviation", now - dt.timedelta(days=3) + S, "acknowledged", None)]  # 2 days, 23:59:59
    rows += [("SEQ-02", "deviation", now - dt.timedelta(days=40), "resolved", None)]  # not unresolved
    rows += [("SEQ-02", "deviation", now - dt.timedelta(days=40), "open", "corr-2")]  # superseded
    counted = ageing(_table(rows), None, now)
    assert [b["bucket"] for b in counted] == [label for label, _, _ in AGE_BUCKETS]
    assert [(b["alerts"], b["deviations"]) for b in counted] == [(2, 1), (2, 0), (2, 0), (2, 0)]
    assert [age_bucket(d) for d in ages] == ["0–2 days"] * 2 + ["3–7 days"] * 2 + ["8–30 days"] * 2 + [">30 days"] * 2


def test_a_site_user_ages_only_their_site() -> None:
    db = _table([("SAFETY-SAE", "alert", EVENT, "open", None)])
    assert sum(int(b["all"]) for b in ageing(db, "GZ-02", EVENT + hours(1))) == 0  # type: ignore[call-overload]
    assert sum(int(b["all"]) for b in ageing(db, "GZ-01", EVENT + hours(1))) == 1  # type: ignore[call-overload]
