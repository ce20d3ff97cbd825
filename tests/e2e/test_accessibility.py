"""Phone layout, keyboard and screen-reader access, checked in Chromium: axe-core (vendored, run
inside each page) finds no WCAG 2.1 level A or AA violation on any page at 1366 and 375 px; the
timeline's markers are reached and opened with the keyboard; times say which clock they are.

Every wait is on a condition with a timeout; no sleeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.e2e.conftest import WAIT_MS, Stack, login, screenshot

pytestmark = pytest.mark.e2e

AXE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text()
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DESKTOP: ViewportSize = {"width": 1366, "height": 900}
PHONE: ViewportSize = {"width": 375, "height": 812}


def violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now: rule id, impact, where."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE)  # through the debugging protocol: the page's CSP allows no inline script
    found = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_AA)
    return [
        {"rule": v["id"], "impact": v["impact"], "help": v["help"], "where": [n["target"] for n in v["nodes"][:5]]}
        for v in found["violations"]
    ]


@pytest.fixture(params=[DESKTOP, PHONE], ids=["1366px", "375px"])
def sized_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=request.param)
    context.set_default_timeout(WAIT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def _pages(stack: Stack) -> list[tuple[str, str]]:
    """(user, path) of every page: list, detail, timeline, overview, operations, users."""
    finding = stack.findings("kind=alert")["items"][0]
    return [
        ("data-manager", "/findings"),
        ("data-manager", f"/findings/{finding['finding_id']}"),
        ("data-manager", f"/participants/{finding['participant_id']}"),
        ("data-manager", "/overview"),
        ("data-manager", "/operations"),
        ("admin", "/admin/users"),
    ]


def test_no_wcag_a_or_aa_violation_on_any_page(stack: Stack, sized_page: Page) -> None:
    page = sized_page
    page.goto(stack.dashboard.url + "/login")
    found = {"/login": violations(page)}
    page.goto(stack.dashboard.url + "/set-password?token=not-a-token")
    found["/set-password"] = violations(page)
    user = ""
    for who, path in _pages(stack):
        if who != user:
            page.context.clear_cookies()
            login(page, stack, who, path)
            user = who
        else:
            page.goto(stack.dashboard.url + path)
        found[path] = violations(page)
    assert {path: v for path, v in found.items() if v} == {}


def test_on_a_phone_the_findings_are_cards_and_log_out_is_reachable(stack: Stack, browser: Browser) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        login(page, stack, "data-manager")
        expect(page.locator("#finding-rows tr").first).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the findings page is {width} px wide on a 375 px screen"
        logout = page.locator("form[action='/logout'] button")
        box = logout.bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= PHONE["width"], "Log out is off-screen"
        first = page.locator("#finding-rows tr").first
        assert first.evaluate("tr => getComputedStyle(tr).display") == "block", "a row is a card"
        label = first.locator("td").nth(2).evaluate("td => getComputedStyle(td, '::before').content")
        assert label == '"Rule: "'
        page.locator("#live-status").scroll_into_view_if_needed()
        page.evaluate("window.scrollBy(0, document.querySelector('#live-status').getBoundingClientRect().top - 8)")
        screenshot(page, "findings-phone")
        page.goto(stack.dashboard.url + f"/findings/{stack.findings('kind=alert')['items'][0]['finding_id']}")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        logout.click()
        page.wait_for_url(lambda url: "/login" in url)
    finally:
        context.close()


def test_skip_links_reach_the_first_finding_in_four_key_presses(stack: Stack, page: Page) -> None:
    login(page, stack, "data-manager")
    expect(page.locator("#finding-rows tr").first).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the main content"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to the findings list"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.closest('#finding-rows tr') !== null")
    assert focused, "the fourth key press lands on the first finding"


def test_timeline_markers_are_reached_by_keyboard_with_a_visible_tooltip_and_open_their_finding(
    stack: Stack, page: Page
) -> None:
    by_participant = Counter(item["participant_id"] for item in stack.findings()["items"])
    participant, _ = by_participant.most_common(1)[0]
    login(page, stack, "data-manager", f"/participants/{participant}")
    marks = page.locator("[data-testid=timeline] a.mark")
    expect(marks.first).to_be_attached()
    status, timeline = stack.api(f"/api/participants/{participant}/timeline")
    assert status == 200
    shown = [e for e in timeline["events"] if e["event_type"] != "ClockTicked"]
    assert marks.count() == len(shown) + len(timeline["findings"]), "every event and finding is a link"

    # Tab from the top of the page until a finding's marker has the focus.
    for _ in range(len(shown) + 40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.closest('g[id^=finding-]') !== null"):
            break
    else:
        raise AssertionError("no finding marker reached with Tab")
    tip = page.locator("#timeline-tip")
    expect(tip).to_be_visible()
    finding_id = page.evaluate("document.activeElement.closest('g').id").removeprefix("finding-")
    finding = next(f for f in timeline["findings"] if f["finding_id"] == finding_id)
    expect(tip).to_contain_text(finding["rule_id"])
    expect(tip).to_contain_text("(UTC")  # the event time, in site time with its offset
    screenshot(page, "participant-timeline-interactive")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: url.endswith(f"/findings/{finding_id}"))


def test_timeline_labels_cover_no_other_marker_in_the_browser(stack: Stack, page: Page) -> None:
    by_participant = Counter(item["participant_id"] for item in stack.findings()["items"])
    participant, _ = by_participant.most_common(1)[0]
    login(page, stack, "data-manager", f"/participants/{participant}")
    expect(page.locator("[data-testid=timeline] a.mark").first).to_be_attached()
    overlaps = page.evaluate(
        """() => {
        const marks = Array.from(document.querySelectorAll(
          'figure.timeline g[id^=event-], figure.timeline g[id^=finding-]'));
        const boxes = marks.map(g => [g.id, g.querySelector('use').getBoundingClientRect()]);
        const hits = [];
        for (const g of marks) for (const text of g.querySelectorAll('text')) {
          const t = text.getBoundingClientRect();
          for (const [id, m] of boxes) {
            if (id === g.id) continue;
            if (t.left < m.right && m.left < t.right && t.top < m.bottom && m.top < t.bottom) hits.push([g.id, id]);
          }
        }
        return hits;
    }"""
    )
    assert overlaps == [], "a label drawn over another event's marker would be read as that event's"
    values = page.locator("[data-testid=event-values]").all_inner_texts()
    assert any("10*9/L" in v or "g/L" in v or "mg/dL" in v for v in values), "lab values show their units"
