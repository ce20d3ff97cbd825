"""Safety clocks on the pages and in the API, with the app's clock injected (no real time)."""

from __future__ import annotations

import datetime as dt
import html
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.unit.test_bulk_review import ALERTS, _client, fid, make_app

EVENT_0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)  # alert 0's event; alert n's is n days later
DUE_0 = EVENT_0 + dt.timedelta(days=7)  # RELAPSE: 7 days (NCT06904729's kit/safety.py)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return make_app(tmp_path)


def _detail(app: Any, now: dt.datetime) -> str:
    app.state.now = lambda: now
    return str(_client(app, "monitor").get(f"/findings/{fid(0)}").text)


def test_an_alert_due_exactly_now_is_not_overdue_and_a_second_later_it_is(app: Any) -> None:
    page = _detail(app, DUE_0)
    assert 'data-testid="due-at"><time datetime="2026-01-08T00:00:00+00:00">2026-01-08 00:00:00 UTC</time>' in page
    assert 'data-testid="overdue"' not in page
    assert re.search(r'data-testid="since-event">7 d 0 h<', page)
    late = _detail(app, DUE_0 + dt.timedelta(seconds=1))
    assert 'data-testid="overdue">overdue by 0 min' in late
    assert "outcome: routine" in late
    assert "ASSUMPTION" in late
    assert "triggering event&#39;s time" in late or "triggering event's time" in late


def test_the_list_shows_an_alerts_severity_and_overdue_flag(app: Any) -> None:
    app.state.now = lambda: DUE_0 + dt.timedelta(days=1, seconds=1)  # alerts 0 and 1 are past due
    page = _client(app, "monitor").get("/findings?rule=RELAPSE&sort=occurred&order=asc&limit=3").text
    rows = re.findall(r'<tr class="alert.*?</tr>', page, re.S)
    assert len(rows) == 3
    assert all("outcome: routine" in row and "—" not in row for row in rows)
    assert ["overdue" in row for row in rows] == [True, True, False]


def test_the_api_gives_each_alert_its_clock(app: Any) -> None:
    app.state.now = lambda: DUE_0
    token = app.state.users.issue_token("monitor")
    item = TestClient(app).get(f"/api/findings/{fid(0)}", headers={"Authorization": f"Bearer {token}"}).json()
    assert item["severity"] is None  # the wire's field stays as published
    assert item["alert_severity"] == "outcome: routine"
    assert item["clock"] == {
        "due_at": "2026-01-08T00:00:00+00:00",
        "overdue": False,
        "seconds_since_event": 7 * 86400,
        "seconds_since_raised": item["clock"]["seconds_since_raised"],
        "days_open": 7,
        "age_bucket": "3–7 days",
        "severity": "outcome: routine",
    }


def test_the_overview_ages_unresolved_findings_from_their_event(app: Any) -> None:
    app.state.now = lambda: EVENT_0 + dt.timedelta(days=ALERTS)  # alert n is ALERTS - n days old
    page = _client(app, "data-manager").get("/overview").text
    cells = dict(re.findall(r'<tr data-bucket="([^"]+)"><th>[^<]+</th><td>(\d+)</td>', page))
    cells = {html.unescape(bucket): n for bucket, n in cells.items()}
    assert cells == {"0–2 days": "2", "3–7 days": "5", "8–30 days": "23", ">30 days": "90"}
    assert "triggering event" in page


def test_the_overdue_queue_holds_the_alerts_past_their_reporting_clock(app: Any) -> None:
    """An alert is overdue once its protocol's clock runs out (RELAPSE: 7 days), not after the
    study's overdue days (14 by default), and exactly when its own flag says so."""
    token = app.state.users.issue_token("monitor")
    api = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    for days_after_due, overdue in ((0, 0), (1, 1), (3, 3)):
        app.state.now = lambda days=days_after_due: DUE_0 + dt.timedelta(days=days, seconds=1)
        listed = api.get("/api/findings?queue=overdue&rule=RELAPSE&limit=200").json()
        assert listed["total"] == overdue + 1  # alert 0 is a second past due, then alert n on day n
        flagged = api.get("/api/findings?rule=RELAPSE&limit=200").json()["items"]
        assert {i["finding_id"] for i in listed["items"]} == {i["finding_id"] for i in flagged if i["clock"]["overdue"]}
        assert api.get("/api/queues").json()["queues"]["overdue"] == overdue + 1
