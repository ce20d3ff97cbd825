"""Bulk review in a real browser, on a real broker, rules service and read model: 100 safety
alerts acknowledged as "all matching this filter", then resolved as the checked rows of a page;
each finding gets its own FindingReviewed, and the finding-reviews topic holds exactly those.

Every wait is on a condition (an element, a URL, an API answer) with a timeout; no sleeps.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from services.kafka import read_to_end
from tests.e2e.conftest import Stack, login, run, screenshot, wait_until
from tests.integration.test_dashboard_read_model import _produce
from tests.unit.test_read_model import _alert

pytestmark = pytest.mark.e2e

N = 100
TERM = "bulk-relapse"


def _alerts() -> list[dict[str, Any]]:
    """100 RELAPSE alerts, as the rules service would publish them, with a term to filter on."""
    found = []
    for n in range(N):
        alert = _alert(n) | {"rule_id": "RELAPSE", "term": f"{TERM} {n:03d}", "participant_id": f"P-B{n:03d}"}
        found.append(alert | {"alert_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"e2e-bulk-{n}"))})
    return found


def _reviews(stack: Stack, ids: set[str]) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        topic = stack.settings.topics.finding_reviews
        return [json.loads(r.value or b"") async for r in read_to_end(stack.settings, topic)]

    return [r for r in run(read()) if r["finding_id"] in ids]


def test_a_bulk_resolve_of_100_findings_is_100_reviews(stack: Stack, page: Page) -> None:
    alerts = _alerts()
    ids = {a["alert_id"] for a in alerts}
    run(_produce(stack.settings, alerts))
    wait_until(lambda: stack.findings(f"q={TERM}")["total"] == N, f"the {N} alerts in the dashboard")

    # Acknowledge: "all 100 matching this filter".
    login(page, stack, "data-manager", f"/findings?q={TERM}&status=open")
    expect(page.locator("[data-testid=total]")).to_have_text(str(N))
    page.check("[data-testid=bulk-all]")
    page.select_option("[data-testid=bulk-action]", "acknowledge")
    page.fill("[data-testid=bulk-comment]", "seen in the weekly safety review")
    page.click("[data-testid=bulk-submit]")
    expect(page.locator("[data-testid=bulk-done]")).to_have_text(f"Recorded: acknowledge × {N}.")
    assert stack.findings(f"q={TERM}&status=acknowledged")["total"] == N

    # Resolve: the checked rows of one page of 100, with one reason.
    page.goto(stack.dashboard.url + f"/findings?q={TERM}&status=acknowledged&limit={N}")
    expect(page.locator("#finding-rows tr")).to_have_count(N)
    page.check("[data-testid=bulk-select-page]")
    expect(page.locator("input[name=finding_id][form=bulk]:checked")).to_have_count(N)
    page.select_option("[data-testid=bulk-action]", "resolve")
    page.select_option("[data-testid=bulk-reason]", "reported_expedited")
    screenshot(page, "bulk-review")
    page.click("[data-testid=bulk-submit]")
    expect(page.locator("[data-testid=bulk-done]")).to_have_text(f"Recorded: resolve × {N}.")
    assert stack.findings(f"q={TERM}&status=resolved")["total"] == N

    reviews = _reviews(stack, ids)
    assert Counter(r["action"] for r in reviews) == {"acknowledge": N, "resolve": N}
    for action in ("acknowledge", "resolve"):
        assert sorted(r["finding_id"] for r in reviews if r["action"] == action) == sorted(ids)
    expedited = "Reported to the sponsor and ethics committee within the expedited timeline"
    assert {r["reason"] for r in reviews if r["action"] == "resolve"} == {expedited}
    detail = stack.api(f"/api/findings/{alerts[0]['alert_id']}")[1]
    assert [r["action"] for r in detail["reviews"]] == ["acknowledge", "resolve"]

    # The overview ages what is still unresolved, from the triggering event's time, and says so.
    page.goto(stack.dashboard.url + "/overview")
    expect(page.locator("[data-testid=ageing] tr[data-bucket]")).to_have_count(4)
    expect(page.locator("[data-testid=awareness-note]")).to_contain_text("triggering event")
    screenshot(page, "overview-ageing")


def test_a_site_users_bulk_with_another_sites_finding_is_refused_wholly(stack: Stack, page: Page) -> None:
    mine = stack.findings("site=GZ-02", user="site")["items"][:3]
    other = stack.findings("site=GZ-01")["items"][0]
    assert mine
    login(page, stack, "site", "/findings?site=GZ-02")
    before = len(_reviews(stack, {f["finding_id"] for f in mine} | {other["finding_id"]}))
    # A curious insider adds another site's finding id to the form before sending it.
    page.evaluate(
        """(id) => { const box = document.createElement("input"); box.type = "checkbox"; box.name = "finding_id";
                     box.value = id; box.checked = true; document.getElementById("bulk").appendChild(box); }""",
        other["finding_id"],
    )
    for finding in mine:
        page.check(f"input[name=finding_id][value='{finding['finding_id']}']")
    page.select_option("[data-testid=bulk-action]", "comment")
    page.fill("[data-testid=bulk-comment]", "checked at the site")
    page.click("[data-testid=bulk-submit]")
    expect(page.locator("[data-testid=bulk-error]")).to_contain_text("nothing was recorded")
    expect(page.locator("[data-testid=bulk-problems]")).to_contain_text(other["finding_id"])
    screenshot(page, "bulk-refused")
    assert len(_reviews(stack, {f["finding_id"] for f in mine} | {other["finding_id"]})) == before
