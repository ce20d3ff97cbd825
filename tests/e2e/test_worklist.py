"""The monitor's worklist in a real browser, on a real broker, rules service and read model: a flood
of 500 findings while a user pages and sorts, a finding's why on its detail page, a form per action.

Every wait is on a condition (an element, a URL, an API answer) with a timeout; no sleeps.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from events.scenarios import build, run
from protocol.kit import kit_of
from protocol.registry import versions_for
from tests.e2e.conftest import Stack, login, screenshot, wait_until

pytestmark = pytest.mark.e2e

FLOOD = 500


def _serious_adverse_events(stack: Stack, count: int) -> list[bytes]:
    """``count`` serious adverse events of the cohort's participants: one SAFETY-SAE alert each."""
    everyone = {(item["participant_id"], item["site_id"]) for item in stack.findings()["items"]}
    people = sorted(p for p in everyone if not p[0].startswith("P-HOSTILE"))
    events = []
    for n in range(count):
        participant, site = people[n % len(people)]
        events.append(
            {
                "event_id": str(uuid.uuid4()),
                "event_type": "AdverseEventReported",
                "schema_version": 1,
                "study_id": "NCT06904729",
                "site_id": site,
                "participant_id": participant,
                "occurred_at": f"2026-02-{1 + n % 27:02d}T09:{n % 60:02d}:00+08:00",
                "recorded_at": f"2026-02-{1 + n % 27:02d}T10:00:00+08:00",
                "source": {"system": "edc.flood", "actor": "crc-01"},
                "payload": {"term": "Pneumonia", "ctcae_grade": 3, "serious": True},
            }
        )
    return [json.dumps(event).encode() for event in events]


def _rows(page: Page) -> list[str]:
    return list(page.locator("#finding-rows tr").evaluate_all("rows => rows.map(r => r.dataset.findingId)"))


def _pager(page: Page) -> tuple[int, int, int]:
    found = re.fullmatch(r"(\d+)–(\d+) of (\d+)", page.locator("[data-testid=pager]").inner_text().strip())
    assert found is not None
    first, last, total = (int(n) for n in found.groups())
    return first, last, total


def test_a_flood_of_500_findings_neither_grows_nor_reorders_the_page_being_read(stack: Stack, page: Page) -> None:
    login(page, stack, "monitor", "/findings?sort=participant&order=asc&limit=5")
    expect(page.locator("#live-status")).to_contain_text("listening")
    first_page, total = _rows(page), int(page.locator("[data-testid=total]").inner_text())
    assert _pager(page) == (1, 5, total)
    before = stack.findings()["total"]

    stack.publish(_serious_adverse_events(stack, FLOOD))
    # While the flood arrives the user goes to the next page, then sorts the other way.
    page.click("[data-testid=next]")
    second_page = _rows(page)
    assert len(second_page) == 5
    assert not set(second_page) & set(first_page), "paging is stable: no row twice"
    assert _pager(page) == (6, 10, total)
    page.click("th >> text=Participant")
    page.wait_for_url(lambda url: "order=desc" in url)
    assert int(page.locator("[data-testid=total]").inner_text()) == total, "the same snapshot under another sort"
    page.click("th >> text=Participant")
    page.wait_for_url(lambda url: "order=asc" in url)
    assert _rows(page) == first_page, "back in the first order: the same rows, in the same order"
    page.evaluate("window.__same_page = true")  # from here on the user only reads

    after = stack.wait_until_in_dashboard()
    assert after >= before + FLOOD
    expect(page.locator("[data-testid=arrivals]")).to_have_text(f"{after - before} new — show")
    assert _rows(page) == first_page, "the page did not grow or reorder"
    assert _pager(page) == (1, 5, total)
    assert int(page.locator("[data-testid=total]").inner_text()) == total
    summary = page.locator("[data-testid=summary] tbody td[data-status]").all_inner_texts()
    assert sum(int(n) for n in summary) == total, "the summary agrees with the total and the pager"
    assert page.evaluate("window.__same_page") is True, "nothing reloaded the page under the user"
    screenshot(page, "findings-arrivals")

    page.click("[data-testid=arrivals]")
    expect(page.locator("[data-testid=total]")).to_have_text(str(after))
    assert _pager(page) == (1, 5, after)
    assert len(_rows(page)) == 5
    summary = page.locator("[data-testid=summary] tbody td[data-status]").all_inner_texts()
    assert sum(int(n) for n in summary) == after


def test_open_alerts_first_can_be_turned_off(stack: Stack, page: Page) -> None:
    login(page, stack, "monitor", "/findings?limit=10")
    expect(page.locator("#finding-rows tr").first).to_have_class(re.compile(r"\bopen-alert\b"))
    page.click("[data-testid=alerts-first]")
    page.wait_for_url(lambda url: "alerts_first=0" in url)
    expect(page.locator("[data-testid=alerts-first]")).to_contain_text("off")
    newest = stack.findings("alerts_first=0&limit=10")["items"]
    assert _rows(page) == [item["finding_id"] for item in newest]


def _lab_limit_finding(stack: Stack) -> str:
    """The events of NCT06904729's scenario that raises ELIG-IN09 (a lymphocyte count below its
    minimum), published to the broker; the finding's id once the dashboard has it."""
    protocol = versions_for("NCT06904729").current
    kit = kit_of(protocol)
    for scenario in kit.scenarios():
        if "ELIG-IN09" in {f.rule_id for f in run(scenario, protocol, kit.vocabulary).findings}:
            events, _ = build(scenario, kit.vocabulary)
            break
    else:
        raise AssertionError("no scenario raises ELIG-IN09")
    stack.publish([event.model_dump_json().encode() for event in events])
    participant = events[0].participant_id

    def found() -> Any:
        items = stack.findings(f"rule=ELIG-IN09&participant={participant}")["items"]
        return items[0]["finding_id"] if items else None

    return str(wait_until(found, "the ELIG-IN09 finding in the dashboard"))


def test_the_detail_page_says_why_in_words_and_links_the_lab_result(stack: Stack, page: Page) -> None:
    finding_id = _lab_limit_finding(stack)
    status, detail = stack.api(f"/api/findings/{finding_id}")
    assert status == 200
    login(page, stack, "monitor", f"/findings/{finding_id}")
    why = page.locator("[data-testid=explanation]")
    expect(why).to_contain_text("is below the minimum 1.0 ×10⁹/L — Inclusion 9.1: “Hematopoietic function:")
    assert why.locator("p.because").first.inner_text() == detail["explanation"], "the page and the API say the same"
    expect(page.locator("tr[data-failing=lymphocytes] mark")).to_have_text("0.99")
    link = page.locator("[data-testid=value-event]")
    expect(link).to_have_count(1)
    assert link.get_attribute("data-event-id") == detail["value_events"][0]
    expect(link).to_contain_text("Screening lab resulted")
    assert "ruleset_fingerprint" not in page.locator("[data-testid=fields]").inner_text()
    why.scroll_into_view_if_needed()
    screenshot(page, "finding-explanation")
    link.click()
    page.wait_for_url(lambda url: f"#event-{detail['value_events'][0]}" in url)


def test_each_review_action_has_its_own_form_and_an_alert_cannot_be_closed(stack: Stack, page: Page) -> None:
    alerts = stack.findings("kind=alert&status=open&rule=SAFETY-SAE")["items"]
    assert alerts
    alert = alerts[0]["finding_id"]
    login(page, stack, "data-manager", f"/findings/{alert}")
    offered = page.locator("[data-testid=review-form] summary").evaluate_all("s => s.map(e => e.dataset.action)")
    assert "close" not in offered
    assert "resolve" in offered
    page.click("summary[data-action=resolve]")
    resolve = page.locator("[data-testid=form-resolve]")
    expect(resolve.locator("select[name=reason]")).to_be_visible()
    expect(page.locator("[data-testid=form-assign] [name=assignee]")).to_be_hidden()
    screenshot(page, "finding-review-forms")
    # "Other" without words: refused, in plain words, and the form stays open with the choice.
    resolve.locator("select[name=reason]").select_option("other")
    resolve.locator("button[data-action=resolve]").click()
    expect(page.locator("[data-testid=review-error]")).to_have_text("You chose “other”: say what the reason is.")
    resolve = page.locator("[data-testid=form-resolve]")
    expect(resolve.locator("select[name=reason]")).to_have_value("other")
    resolve.locator("select[name=reason]").select_option("reported_expedited")
    resolve.locator("button[data-action=resolve]").click()
    expect(page.locator("[data-testid=status]")).to_have_text("resolved")
    expect(page.locator("[data-testid=history]")).to_contain_text(
        "Reported to the sponsor and ethics committee within the expedited timeline"
    )
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    page.click("summary[data-action=reopen]")
    page.click("button[data-action=reopen]")
    expect(page.locator("[data-testid=status]")).to_have_text("open")
    refused = page.request.post(
        stack.dashboard.url + f"/findings/{alert}/reviews",
        form={"csrf": csrf or "", "action": "close", "reason": "entry_error"},
        max_redirects=0,
    )
    assert refused.status == 422
    assert "cannot be closed as not a deviation" in refused.text()
    assert stack.api(f"/api/findings/{alert}")[1]["status"] == "open"
