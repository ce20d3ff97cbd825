"""Safety clocks and the time rule in a real browser, on a real broker and read model: an alert
past its protocol's reporting clock says overdue and when it was due; one within its clock does
not; event times are in the site's local time with its offset until the user switches to UTC,
and the choice holds across pages.

Every wait is on a condition (an element, an API answer) with a timeout; no sleeps.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack, login, run, wait_until
from tests.integration.test_dashboard_read_model import _produce
from tests.unit.test_read_model import _alert

pytestmark = pytest.mark.e2e

SITE_TIME = dt.timezone(dt.timedelta(hours=8))  # the sites of the fixtures are in UTC+08:00


def _serious_adverse_event(n: int, hours_ago: float) -> dict[str, Any]:
    """A SAFETY-SAE alert (reporting clock: 24 hours, the package's kit/safety.py) whose event
    happened ``hours_ago`` hours before now, in site time."""
    occurred = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).astimezone(SITE_TIME).replace(microsecond=0)
    alert = _alert(900 + n) | {"term": f"clock-sae {n}", "participant_id": f"P-C{n:02d}", "site_id": "GZ-01"}
    return alert | {"occurred_at": occurred.isoformat(), "alert_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"clock-{n}"))}


def test_an_alert_past_its_reporting_clock_says_overdue_and_one_within_does_not(stack: Stack, page: Page) -> None:
    late, fresh = _serious_adverse_event(1, hours_ago=30), _serious_adverse_event(2, hours_ago=2)
    run(_produce(stack.settings, [late, fresh]))
    wait_until(lambda: stack.findings("q=clock-sae")["total"] == 2, "the two alerts in the dashboard")

    login(page, stack, "data-manager", f"/findings/{late['alert_id']}")
    expect(page.locator("[data-testid=due-at]")).to_contain_text("UTC")
    expect(page.locator("[data-testid=due-at]")).to_contain_text("24 hours")
    expect(page.locator("[data-testid=overdue]")).to_contain_text("overdue by 6 h")

    page.goto(stack.dashboard.url + f"/findings/{fresh['alert_id']}")
    expect(page.locator("[data-testid=due-at]")).to_be_visible()
    expect(page.locator("[data-testid=overdue]")).to_have_count(0)

    # The overdue queue holds the late alert and not the fresh one.
    overdue = stack.findings("q=clock-sae&queue=overdue")
    assert [i["finding_id"] for i in overdue["items"]] == [late["alert_id"]]


def test_event_times_are_in_site_time_until_the_user_switches_to_utc(stack: Stack, page: Page) -> None:
    alert = _serious_adverse_event(3, hours_ago=3)
    run(_produce(stack.settings, [alert]))
    wait_until(lambda: stack.findings("q=clock-sae%203")["total"] == 1, "the alert in the dashboard")
    occurred = dt.datetime.fromisoformat(alert["occurred_at"])
    in_site = f"{occurred:%Y-%m-%d %H:%M} (UTC+08:00)"
    in_utc = f"{occurred.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"

    login(page, stack, "data-manager", f"/findings/{alert['alert_id']}")
    expect(page.locator("main")).to_contain_text(in_site)
    page.click("[data-testid=time-switch]")
    expect(page.locator("main")).to_contain_text(in_utc)
    expect(page.locator("main")).not_to_contain_text(in_site)
    # The choice holds on the next page, and switching back restores site time.
    page.goto(stack.dashboard.url + f"/findings/{alert['alert_id']}")
    expect(page.locator("main")).to_contain_text(in_utc)
    page.click("[data-testid=time-switch]")
    expect(page.locator("main")).to_contain_text(in_site)
