"""One rule for times on every page, the UTC switch, and event values with their units."""

from __future__ import annotations

import re
from typing import Any

import pytest

from services.dashboard.event_values import event_values
from services.dashboard.times import event_time_text, system_time_text
from tests.unit.test_dashboard_app import _client, app  # noqa: F401 - the app fixture

EVENT = "2026-01-02T08:00:00+08:00"  # finding 1 of the fixture: 08:00 at a site eight hours east
RAISED = "2026-01-01T00:00:00+00:00"  # every fixture record's Kafka time


def test_event_times_keep_their_site_offset_and_system_times_are_utc() -> None:
    assert event_time_text(EVENT) == "2026-01-02 08:00 (UTC+08:00)"
    assert event_time_text("2026-01-02T08:00:00-05:30") == "2026-01-02 08:00 (UTC-05:30)"
    assert event_time_text(EVENT, "utc") == "2026-01-02 00:00 UTC"
    assert system_time_text("2026-01-02T08:00:00+08:00") == "2026-01-02 00:00:00 UTC"
    assert event_time_text("not a time") == "not a time"  # shown as it is, never an error page
    assert event_time_text(None) == ""


def test_the_findings_page_labels_both_clocks_and_switches_to_utc(app: Any) -> None:  # noqa: F811
    client = _client(app, "data-manager")
    page = client.get("/findings").text
    assert f'<time datetime="{EVENT}">2026-01-02 08:00 (UTC+08:00)</time>' in page
    assert f'<time datetime="{RAISED}">2026-01-01 00:00:00 UTC</time>' in page
    assert "2026-01-02 00:00 UTC" in client.get("/findings?time=utc").text

    switched = client.get("/preferences/time", params={"zone": "utc", "next": "/findings?rule=SEQ-02"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/findings?rule=SEQ-02"
    assert "httponly" in switched.headers["set-cookie"].lower()
    page = client.get("/findings").text
    assert "2026-01-02 00:00 UTC" in page
    assert "(UTC+08:00)" not in page
    assert "Times in UTC · show site times" in page
    client.get("/preferences/time", params={"zone": "site"})
    assert "(UTC+08:00)" in client.get("/findings").text


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_the_time_switch_never_redirects_off_site(app: Any, target: str) -> None:  # noqa: F811
    answer = _client(app, "monitor").get("/preferences/time", params={"zone": "utc", "next": target})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/"


def test_an_unknown_zone_is_the_site_clock(app: Any) -> None:  # noqa: F811
    client = _client(app, "monitor")
    answer = client.get("/preferences/time", params={"zone": "<script>"})
    assert re.search(r"trialguard_time=site", answer.headers["set-cookie"])
    assert "(UTC+08:00)" in client.get("/findings?time=<script>").text


def test_the_time_switch_needs_a_login(app: Any) -> None:  # noqa: F811
    answer = _client(app).get("/preferences/time", params={"zone": "utc"})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")


def test_every_page_has_a_skip_link_and_the_findings_table_says_how_it_is_sorted(app: Any) -> None:  # noqa: F811
    client = _client(app, "data-manager")
    for path in ("/findings", "/overview", "/operations"):
        page = client.get(path).text
        assert '<a class="skip" href="#main">' in page
        assert '<main id="main"' in page
    page = client.get("/findings?sort=participant&order=desc").text
    assert page.count("aria-sort=") == 1
    assert 'aria-sort="descending"><a' in page
    assert 'role="status" aria-live="polite"' in page


@pytest.mark.parametrize(
    ("event_type", "payload", "shown"),
    [
        (
            "ScreeningLabResulted",
            {"loinc": "26464-8", "value": 1.62, "unit": "10*9/L", "lln": 3.0},
            "1.62 10*9/L (LLN 3)",
        ),
        (
            "ScreeningLabResulted",
            {"loinc": "9999-9", "value": 0.5, "unit": "mg/dL", "comparator": "<"},
            "LOINC 9999-9 <0.5 mg/dL",
        ),
        (
            "AdverseEventReported",
            {"term": "private words", "ctcae_grade": 3, "serious": True, "crs_grade": 3},
            "CTCAE grade 3, CRS grade 3, serious",
        ),
        (
            "ParticipantRegistered",
            {"birth_date": "2015-01-01", "sex": "F", "height_cm": 130.5, "weight_kg": 30.0},
            "sex F, height 130.5 cm, weight 30 kg",
        ),
        ("RelapseReported", {"description": "free text", "upcr_mg_mg": 2.1}, "UPCR 2.1 mg/mg"),
        ("ParticipantWithdrawn", {"reason": "free text"}, ""),
    ],
)
def test_event_values_carry_units_and_never_free_text_or_birth_dates(
    event_type: str, payload: dict[str, Any], shown: str
) -> None:
    text = event_values(event_type, payload)
    assert text.endswith(shown)
    assert "free text" not in text
    assert "private" not in text
    assert "2015" not in text
