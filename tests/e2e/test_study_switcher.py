"""Two studies in one dashboard, in Chromium against a real broker and a real dashboard process.

The dashboard serves NCT06904729 (A) and NCT06946485 (B) (``--study`` twice); findings are
written to each study's deviations topic as the rules service would. A user with roles in both
switches study in the header and sees the other study's findings with the role she has there; a
monitor and a site user of A get 404 for B everywhere they try, in the browser and through its
cookies on the API, the CSV, the live stream and the timeline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from playwright.sync_api import Page, expect

from services.kafka import KafkaSettings, ensure_topics
from tests.e2e.conftest import PASSWORD, DashboardProcess, run, screenshot, wait_until
from tests.processes import ROOT

A, B = "NCT06904729", "NCT06946485"
PER_STUDY = 6


class TwoStudyDashboard(DashboardProcess):
    """The dashboard serving A (the settings' study) and B."""

    def options(self) -> list[str]:
        return [*super().options(), "--study", B]


def _finding(study: str, n: int) -> dict[str, Any]:
    return {
        "event_type": "DeviationRaised",
        "schema_version": 1,
        "deviation_id": str(uuid.uuid4()),
        "study_id": study,
        "site_id": "GZ-02",
        "participant_id": f"P-{n:03d}",  # the same participant ids in both studies
        "rule_id": "SEQ-02" if study == A else "ELIG-B",
        "protocol_version": "1.0",
        "category": "STUDY PROCEDURE",
        "severity": "important",
        "term": f"{study} finding {n}",
        "protocol_reference": "Design",
        "occurred_at": f"2026-03-{n + 1:02d}T08:00:00+08:00",
        "trigger_event_ids": [str(uuid.uuid4())],
        "evidence": {"n": n},
    }


async def _publish(settings: KafkaSettings, findings: dict[str, list[dict[str, Any]]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all")
    await producer.start()
    try:
        for study, items in findings.items():
            study_settings = replace(settings, study_id=study)
            await ensure_topics(study_settings)
            for item in items:
                key = item["participant_id"].encode()
                await producer.send_and_wait(study_settings.topics.deviations, json.dumps(item).encode(), key=key)
    finally:
        await producer.stop()


def _users(settings: KafkaSettings, data_dir: Path) -> None:
    """mona (monitor of A), sid (site GZ-02 of A), both (data-manager of A, monitor of B)."""
    broker = ["--bootstrap-servers", settings.bootstrap_servers, "--namespace", settings.namespace]
    cli = [sys.executable, "-m", "services.cli", "users"]
    where = ["--data-dir", str(data_dir), *broker]
    steps = [
        ["add", "mona", "--role", "monitor", "--study", A],
        ["add", "sid", "--role", "site", "--site", "GZ-02", "--study", A],
        ["add", "both", "--role", "data-manager", "--study", A],
        ["role", "both", "--role", "monitor", "--study", B],
    ]
    for step in steps:
        subprocess.run([*cli, *step, *where], check=True, cwd=ROOT, capture_output=True)
    for name in ("mona", "sid", "both"):
        passwd = [*cli, "passwd", name, "--study", A, *where]
        subprocess.run(passwd, input=f"{PASSWORD}\n".encode(), check=True, cwd=ROOT, capture_output=True)


@pytest.fixture(scope="module")
def two_studies(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("e2e-studies")
    settings = KafkaSettings(kafka_bootstrap, A, f"e2e-studies-{uuid.uuid4().hex[:10]}")
    findings = {study: [_finding(study, n) for n in range(PER_STUDY)] for study in (A, B)}
    dashboard = TwoStudyDashboard(settings, folder / "dashboard", folder / "dashboard.log")
    _users(settings, dashboard.data_dir)
    run(_publish(settings, findings))
    dashboard.start()
    try:
        yield dashboard, findings
    finally:
        dashboard.stop()


def _login(page: Page, dashboard: DashboardProcess, user: str) -> None:
    page.goto(dashboard.url + "/findings")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def _rows(page: Page) -> list[str]:
    return page.locator("#finding-rows tr td:nth-child(3)").all_inner_texts()


def test_switching_study_shows_the_other_studys_findings(two_studies: Any, page: Page) -> None:
    dashboard, findings = two_studies
    _login(page, dashboard, "both")
    wait_until(lambda: page.reload() and len(_rows(page)) == PER_STUDY, "A's findings in the list")
    assert set(_rows(page)) == {"SEQ-02"}
    expect(page.locator("[data-testid=who]")).to_contain_text("both · data-manager")
    page.select_option("[data-testid=study-select]", B)
    page.click("[data-testid=study-switcher] button[type=submit]")
    page.wait_for_url(lambda url: f"study={B}" in url)
    wait_until(lambda: page.reload() and len(_rows(page)) == PER_STUDY, "B's findings in the list")
    assert set(_rows(page)) == {"ELIG-B"}
    expect(page.locator("[data-testid=who]")).to_contain_text("both · monitor")
    screenshot(page, "study-switcher")
    # A link without ?study= stays in the study switched to.
    page.goto(dashboard.url + f"/findings/{findings[B][0]['deviation_id']}")
    expect(page.locator("body")).to_contain_text(f"{B} finding 0")
    page.select_option("[data-testid=study-select]", A)
    page.click("[data-testid=study-switcher] button[type=submit]")
    page.wait_for_url(lambda url: f"study={A}" in url)
    assert set(_rows(page)) == {"SEQ-02"}


@pytest.mark.parametrize("user", ["mona", "sid"])
def test_a_user_of_study_a_gets_404_for_study_b_everywhere(two_studies: Any, page: Page, user: str) -> None:
    dashboard, findings = two_studies
    _login(page, dashboard, user)
    expect(page.locator("[data-testid=study-select]")).to_have_count(0)  # one study: nothing to switch to
    b_finding = findings[B][0]["deviation_id"]
    for path in (
        f"/findings/{b_finding}",
        f"/findings?study={B}",
        f"/overview?study={B}",
        f"/participants/P-000?study={B}",
    ):
        response = page.goto(dashboard.url + path)
        assert response is not None
        assert response.status == 404, path
        assert f"{B} finding" not in page.content()
    for path in (
        f"/api/findings/{b_finding}",
        f"/api/findings?study={B}",
        f"/api/findings.csv?study={B}",
        f"/api/summary?study={B}",
        f"/api/live?study={B}",
        f"/api/participants/P-000/timeline?study={B}",
    ):
        answer = page.request.get(dashboard.url + path)  # the browser's own cookies
        assert answer.status == 404, path
    # A's own pages show A's findings only, the shared participant id included.
    page.goto(dashboard.url + "/participants/P-000")
    expect(page.locator("body")).to_contain_text(f"{A} finding 0")
    assert f"{B} finding" not in page.content()


def test_the_work_queues_count_what_is_mine_unassigned_and_overdue(two_studies: Any, page: Page) -> None:
    dashboard, _ = two_studies
    _login(page, dashboard, "both")
    page.goto(dashboard.url + f"/findings?study={A}")
    wait_until(lambda: page.reload() and len(_rows(page)) == PER_STUDY, "A's findings in the list")
    # Two of A's findings assigned to herself, in one bulk action.
    boxes = page.locator("input[name=finding_id][form=bulk]")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.select_option("[data-testid=bulk-action]", "assign")
    page.fill("[data-testid=bulk-assignee]", "both")
    page.click("[data-testid=bulk-submit]")
    expect(page.locator("[data-testid=bulk-done]")).to_have_text("Recorded: assign × 2.")
    page.goto(dashboard.url + f"/findings?study={A}")

    def counts() -> dict[str, str]:
        page.reload()
        return {q: page.locator(f"[data-testid=queue-{q}] .count").inner_text() for q in ("mine", "unassigned")}

    wait_until(lambda: counts() == {"mine": "2", "unassigned": str(PER_STUDY - 2)}, "the queue counts after assigning")
    # Every finding's event is in March 2026, more than the default 14 overdue days ago, and open.
    expect(page.locator("[data-testid=queue-overdue] .count")).to_have_text(str(PER_STUDY))
    expect(page.locator("[data-testid=study-select]")).to_have_value(A)
    page.click("[data-testid=queue-mine]")
    page.wait_for_url(lambda url: "queue=mine" in url)
    expect(page.locator("#finding-rows tr")).to_have_count(2)
    screenshot(page, "work-queues")
