"""The deviation dashboard in a real browser, on a real broker, rules service and read model.

Every wait is on a condition (an element, a URL, an API answer) with a timeout; no sleeps.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Page, expect

from tests.e2e.conftest import Stack, login, run, screenshot, wait_until

pytestmark = pytest.mark.e2e

HOSTILE_SITE = "<script>window.__pwned = 1</script>"
HOSTILE_EVIDENCE = '<img src=x onerror="window.__pwned = 2">'
HOSTILE_DEAD_LETTER = b"<script>window.__pwned = 3</script>"


def _open_finding(stack: Stack, **where: str) -> dict[str, Any]:
    """An open deviation (with ``where`` filters), as the API lists it."""
    query = "&".join(f"{k}={v}" for k, v in ({"kind": "deviation", "status": "open"} | where).items())
    items = stack.findings(query)["items"]
    assert items, f"the cohort has no open deviation with {where}"
    return dict(items[0])


def test_an_unauthenticated_visit_lands_on_the_login_page(stack: Stack, page: Page) -> None:
    page.goto(stack.dashboard.url + "/findings?rule=SEQ-02")
    page.wait_for_url(lambda url: "/login?next=" in url)
    expect(page.locator("form[action='/login']")).to_be_visible()
    assert "next=/findings" in page.url
    screenshot(page, "login")
    status, _ = stack.dashboard.api("/api/findings", token="not-a-token")
    assert status == 401


def test_a_finding_raised_after_the_page_opened_appears_without_a_reload(stack: Stack, page: Page) -> None:
    login(page, stack, "data-manager")
    expect(page.locator("#live-status")).to_contain_text("listening")
    page.evaluate("window.__same_page = true")
    someone = stack.findings("site=GZ-01")["items"][0]
    serious = {
        "event_id": str(uuid.uuid4()),
        "event_type": "AdverseEventReported",
        "schema_version": 1,
        "study_id": "NCT06904729",
        "site_id": someone["site_id"],
        "participant_id": someone["participant_id"],
        "occurred_at": "2026-02-01T09:00:00+08:00",
        "recorded_at": "2026-02-01T10:00:00+08:00",
        "source": {"system": "edc.gz01", "actor": "crc-01"},
        "payload": {"term": "Pneumonia", "ctcae_grade": 3, "serious": True},
    }
    before = page.locator("[data-testid=total]").inner_text()
    stack.publish([json.dumps(serious).encode()])
    # The list holds still: the arrival is announced, not slipped in under the user.
    expect(page.locator("[data-testid=arrivals]")).to_have_text("1 new — show")
    assert page.evaluate("window.__same_page") is True, "the page reloaded"
    expect(page.locator("[data-testid=total]")).to_have_text(before)
    screenshot(page, "findings-live")
    page.click("[data-testid=arrivals]")
    row = page.locator(f"#finding-rows tr[data-rule='SAFETY-SAE']:has-text('{someone['participant_id']}')").first
    expect(row).to_be_visible()
    assert "open-alert" in (row.get_attribute("class") or ""), "an open safety alert must stand out"
    expect(page.locator("[data-testid=total]")).to_have_text(str(stack.findings()["total"]))


def test_filtering_by_rule_shows_only_that_rule_and_the_counts_follow(stack: Stack, page: Page) -> None:
    everything = stack.findings()
    by_rule = Counter(item["rule_id"] for item in everything["items"])
    rule, count = next((r, n) for r, n in by_rule.most_common() if 1 < n < everything["total"])
    login(page, stack, "data-manager")
    page.select_option("select[name=rule]", rule)
    page.click("[data-testid=filters] button[type=submit]")
    page.wait_for_url(lambda url: f"rule={rule}" in url)
    rules_shown = page.locator("#finding-rows tr").evaluate_all("rows => rows.map(r => r.dataset.rule)")
    assert rules_shown
    assert set(rules_shown) == {rule}
    assert len(rules_shown) == count
    expect(page.locator("[data-testid=total]")).to_have_text(str(count))
    summary_cells = page.locator("[data-testid=summary] tbody td[data-status]").all_inner_texts()
    assert sum(int(n) for n in summary_cells) == count, "the summary follows the filter"
    screenshot(page, "findings-filtered")


def test_an_acknowledgement_survives_a_restart_and_a_deleted_database(stack: Stack, page: Page) -> None:
    finding = _open_finding(stack)
    login(page, stack, "data-manager", f"/findings/{finding['finding_id']}")
    page.click("summary[data-action=acknowledge]")
    page.click("button[data-action=acknowledge]")
    expect(page.locator("[data-testid=status]")).to_have_text("acknowledged")
    expect(page.locator("[data-testid=history]")).to_contain_text("data-manager")
    screenshot(page, "finding-acknowledged")

    stack.dashboard.stop()
    read_model = stack.dashboard.data_dir / f"read-model.{stack.settings.study_id}.sqlite3"  # one per study
    for path in (
        read_model,
        read_model.with_name(read_model.name + "-wal"),
        read_model.with_name(read_model.name + "-shm"),
    ):
        path.unlink(missing_ok=True)
    stack.dashboard.start()
    assert read_model.exists(), "the read model is rebuilt from the topics"

    def acknowledged() -> bool:
        status, body = stack.api(f"/api/findings/{finding['finding_id']}")
        return status == 200 and body["status"] == "acknowledged"

    wait_until(acknowledged, "the rebuilt read model to hold the acknowledgement")
    page.reload()  # the session survives the restart: its key is kept in the data directory
    expect(page.locator("[data-testid=status]")).to_have_text("acknowledged")


def test_a_monitor_cannot_resolve_and_an_auditor_cannot_acknowledge(stack: Stack, page: Page) -> None:
    finding = _open_finding(stack)
    path = f"/findings/{finding['finding_id']}"

    login(page, stack, "monitor", path)
    buttons = page.locator("[data-testid=review-form] button[data-action]").evaluate_all(
        "buttons => buttons.map(b => b.dataset.action)"
    )
    assert "acknowledge" in buttons
    assert "resolve" not in buttons
    assert "close" not in buttons
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        stack.dashboard.url + path + "/reviews",
        form={"csrf": csrf or "", "action": "resolve", "reason": "looks fine"},
        max_redirects=0,
    )
    assert refused.status == 403
    status, body = stack.api(
        path.replace("/findings", "/api/findings") + "/reviews",
        "monitor",
        {"action": "resolve", "reason": "looks fine"},
    )
    assert status == 403, body

    page.context.clear_cookies()
    login(page, stack, "auditor", path)
    expect(page.locator("[data-testid=no-actions]")).to_be_visible()
    expect(page.locator("[data-testid=history]")).to_be_visible()
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    refused = page.request.post(
        stack.dashboard.url + path + "/reviews", form={"csrf": csrf or "", "action": "acknowledge"}, max_redirects=0
    )
    assert refused.status == 403
    status, body = stack.api(
        path.replace("/findings", "/api/findings") + "/reviews", "auditor", {"action": "acknowledge"}
    )
    assert status == 403, body
    assert stack.api(f"/api/findings/{finding['finding_id']}")[1]["status"] == "open"
    screenshot(page, "finding-auditor")


def test_a_site_user_sees_only_their_site(stack: Stack, page: Page) -> None:
    mine = stack.findings("site=GZ-02")["total"]
    others = stack.findings("site=GZ-01")["items"]
    assert mine
    assert others
    login(page, stack, "site")
    sites = page.locator("#finding-rows tr td:nth-child(2)").all_inner_texts()
    assert sites
    assert set(sites) == {"GZ-02"}
    expect(page.locator("[data-testid=total]")).to_have_text(str(mine))
    assert stack.findings(user="site")["total"] == mine
    response = page.goto(stack.dashboard.url + f"/findings/{others[0]['finding_id']}")
    assert response is not None
    assert response.status == 404
    assert stack.api(f"/api/findings/{others[0]['finding_id']}", "site")[0] == 404
    screenshot(page, "findings-site-user")


async def _publish_hostile(stack: Stack) -> str:
    """A finding with hostile text on the deviations topic (as a broken or compromised producer
    would write it), and hostile bytes on participant-events (the rules service dead-letters them)."""
    finding_id = str(uuid.uuid4())
    finding = {
        "event_type": "DeviationRaised",
        "schema_version": 1,
        "deviation_id": finding_id,
        "study_id": "NCT06904729",
        "site_id": HOSTILE_SITE,
        "participant_id": "P-HOSTILE",
        "rule_id": "SEQ-02",
        "protocol_version": "1.0",
        "category": "STUDY PROCEDURE",
        "severity": "important",
        "term": "<b>bold?</b> " + HOSTILE_SITE,
        "protocol_reference": "Design",
        "occurred_at": "2026-03-01T08:00:00+08:00",
        "trigger_event_ids": [str(uuid.uuid4())],
        "evidence": {"note": HOSTILE_EVIDENCE},
    }
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(stack.settings.topics.deviations, json.dumps(finding).encode(), key=b"P-HOSTILE")
        await producer.send_and_wait(stack.settings.topics.participant_events, HOSTILE_DEAD_LETTER, key=b"P-HOSTILE")
    finally:
        await producer.stop()
    return finding_id


def test_script_in_a_site_id_or_a_dead_letter_renders_as_text(stack: Stack, page: Page) -> None:
    finding_id = run(_publish_hostile(stack))
    wait_until(lambda: stack.api(f"/api/findings/{finding_id}")[0] == 200, "the hostile finding in the read model")
    login(page, stack, "data-manager", "/findings?participant=P-HOSTILE")
    cells = page.locator("#finding-rows tr td:nth-child(2)").all_inner_texts()
    assert cells == [HOSTILE_SITE], "the site id is shown as the text it is"
    page.goto(stack.dashboard.url + f"/findings/{finding_id}")
    expect(page.locator("[data-testid=evidence] td").first).to_have_text(HOSTILE_EVIDENCE)
    response = page.goto(stack.dashboard.url + "/operations")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    wait_until(
        lambda: (
            page.reload()
            and HOSTILE_DEAD_LETTER.decode() in page.locator("[data-testid=dead-letters] pre").all_inner_texts()
        ),
        "the dead letter on the operations page",
    )
    assert page.evaluate("window.__pwned") is None, "no data ever ran as script"
    screenshot(page, "operations-hostile")


def test_the_participant_timeline_is_an_svg_with_one_marker_per_finding(stack: Stack, page: Page) -> None:
    by_participant = Counter(item["participant_id"] for item in stack.findings("kind=deviation")["items"])
    participant, _ = by_participant.most_common(1)[0]
    expected = stack.findings(f"participant={participant}")["total"]
    login(page, stack, "data-manager", f"/participants/{participant}")
    svg = page.locator("[data-testid=timeline] svg")
    expect(svg).to_be_visible()
    markers = svg.locator("g[id^='finding-']").evaluate_all("gs => gs.map(g => g.id)")
    assert len(markers) == expected == len(set(markers))
    status, timeline = stack.api(f"/api/participants/{participant}/timeline")
    assert status == 200
    assert {f"finding-{f['finding_id']}" for f in timeline["findings"]} == set(markers)
    screenshot(page, "participant-timeline")
