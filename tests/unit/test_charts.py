"""The dashboard's pictures: one SVG element per event and finding, escaped text, deterministic output."""

from __future__ import annotations

import datetime as dt
import time
import uuid
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from contracts import Category
from protocol.nct06904729 import PROTOCOL
from services.presentation.charts import (
    CATEGORIES,
    SAFETY_ALERT,
    findings_per_week_svg,
    participant_timeline_svg,
    visit_windows,
)

SVG = "{http://www.w3.org/2000/svg}"
TZ = dt.timezone(dt.timedelta(hours=8))
INFUSED = dt.datetime(2025, 12, 1, 9, 30, tzinfo=TZ)
HOSTILE = "<script>alert(1)</script>"


@dataclass(frozen=True)
class Finding:
    """A finding as an object, to show that objects and mappings are both accepted."""

    finding_id: str
    rule_id: str
    kind: str
    severity: str | None
    occurred_at: dt.datetime


def event(event_type: str, at: dt.datetime, label: str = "", event_id: str | None = None) -> dict[str, Any]:
    return {"event_id": event_id or str(uuid.uuid4()), "event_type": event_type, "occurred_at": at, "label": label}


def journey() -> tuple[list[dict[str, Any]], list[Finding]]:
    """A participant from registration to M3 with an AE, a relapse, a tick and three findings."""
    days = dt.timedelta(days=1)
    start = INFUSED - 40 * days
    events = [
        event("ParticipantRegistered", start, event_id="reg"),
        event("ConsentSigned", start + days, "guardian", event_id="consent"),
        event("ScreeningLabResulted", start + 2 * days, "ALT", event_id="lab"),
        event("ParticipantEnrolled", start + 10 * days, "high_dose", event_id="enrol"),
        event("LeukapheresisPerformed", start + 12 * days, event_id="leuka"),
        event("LymphodepletionAdministered", INFUSED - 5 * days, event_id="ld"),
        event("CarTInfused", INFUSED, event_id="infusion"),
        event("ClockTicked", INFUSED + 3 * days, event_id="tick"),
        event("AdverseEventReported", INFUSED + 4 * days, HOSTILE, event_id="ae"),
        event("FollowUpVisitCompleted", INFUSED + 7 * days, "D7", event_id="d7"),
        event("FollowUpVisitCompleted", INFUSED + 20 * days, "D14", event_id="d14"),
        event("RelapseReported", INFUSED + 60 * days, event_id="relapse"),
    ]
    findings = [
        Finding("f-alert", "SAFETY-CRS3", "alert", None, INFUSED + 4 * days),
        Finding("f-important", "CONSENT-01", "deviation", "important", start + 2 * days),
        Finding("f-minor", "VISIT-01", "deviation", "minor", INFUSED + 20 * days),
    ]
    return events, findings


def ids(svg: str) -> Counter[str]:
    return Counter(i for el in ET.fromstring(svg).iter() if (i := el.get("id")) is not None)


def test_one_element_per_event_and_finding_and_none_for_the_watermark() -> None:
    events, findings = journey()
    svg = participant_timeline_svg(events, findings, visit_windows(events, PROTOCOL.schedule))
    counts = ids(svg)
    for f in findings:
        assert counts[f"finding-{f.finding_id}"] == 1
    for e in events:
        assert counts[f"event-{e['event_id']}"] == (0 if e["event_type"] == "ClockTicked" else 1)
    assert sum(n for i, n in counts.items() if i.startswith("finding-")) == len(findings)
    assert sum(n for i, n in counts.items() if i.startswith("event-")) == len(events) - 1
    # The finding element holds its marker: the page can style or link it.
    root = ET.fromstring(svg)
    group = next(el for el in root.iter(f"{SVG}g") if el.get("id") == "finding-f-alert")
    assert list(group.iter(f"{SVG}use")) or list(group.iter(f"{SVG}path"))


def test_inline_svg_with_an_accessible_name() -> None:
    events, findings = journey()
    svg = participant_timeline_svg(events, findings, [], title="Participant E-03")
    assert svg.startswith("<svg ")
    assert "<?xml" not in svg
    assert "<!DOCTYPE" not in svg
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "group"  # its markers are links: an img would hide them
    assert root.get("aria-label") == "Participant E-03"
    width_px = float(root.get("width", "").removesuffix("pt")) * 4 / 3
    assert 900 <= width_px <= 1100


def test_hostile_label_is_escaped_text() -> None:
    events, findings = journey()
    hostile_title = 'E-03" onload="alert(1)'
    svg = participant_timeline_svg(events, findings, [], title=hostile_title)
    root = ET.fromstring(svg)
    assert not [el for el in root.iter() if el.tag.rsplit("}", 1)[-1].lower() == "script"]
    assert "<script" not in svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg
    assert HOSTILE in ["".join(el.itertext()) for el in root.iter(f"{SVG}text")]
    assert root.get("aria-label") == hostile_title
    assert root.get("onload") is None


def test_same_input_same_svg() -> None:
    events, findings = journey()
    windows = visit_windows(events, PROTOCOL.schedule)
    first = participant_timeline_svg(events, findings, windows)
    assert participant_timeline_svg(events, findings, windows) == first
    rows = [(dt.date(2025, 12, 1), Category.ELIGIBILITY.value, 2), (dt.date(2025, 12, 8), SAFETY_ALERT, 1)]
    assert findings_per_week_svg(rows) == findings_per_week_svg(rows)


def test_no_events_gives_a_small_picture_saying_so() -> None:
    for svg in (
        participant_timeline_svg([], [], []),
        participant_timeline_svg([event("ClockTicked", INFUSED)], [], visit_windows([], PROTOCOL.schedule)),
    ):
        root = ET.fromstring(svg)
        assert "No events" in "".join(root.itertext())
        assert float(root.get("height", "").removesuffix("pt")) < 100
        assert not [i for i in ids(svg) if i.startswith(("event-", "finding-"))]


def test_an_unknown_event_type_still_shows() -> None:
    svg = participant_timeline_svg([event("SomethingNew", INFUSED, event_id="new")], [], [])
    assert ids(svg)["event-new"] == 1
    assert "Other" in "".join(ET.fromstring(svg).itertext())


def test_visit_windows_follow_the_protocol_schedule() -> None:
    events, _ = journey()
    spans = visit_windows(events, PROTOCOL.schedule)
    assert [s.visit for s in spans] == [v.code for v in PROTOCOL.schedule]
    infused_on = INFUSED.date()
    for span, window in zip(spans, PROTOCOL.schedule, strict=True):
        first, last = (span.start - infused_on).days, (span.end - infused_on).days
        # Exactly the days the VISIT-01 rule accepts, no more, no fewer.
        assert window.allows(first)
        assert window.allows(last)
        assert not window.allows(first - 1)
        assert not window.allows(last + 1)
        assert span.end == window.closes_after(infused_on)
    d7 = spans[0]
    assert (d7.visit, d7.start, d7.end) == ("D7", dt.date(2025, 12, 6), dt.date(2025, 12, 10))


def test_visit_windows_count_from_the_first_infusion_in_its_own_offset() -> None:
    first = dt.datetime(2025, 12, 2, 0, 30, tzinfo=TZ)  # still 1 December in UTC: the local date counts
    second = dt.datetime(2025, 12, 1, 23, 30, tzinfo=TZ)  # a second infusion does not move the schedule
    spans = visit_windows([event("CarTInfused", first), event("CarTInfused", second)], PROTOCOL.schedule)
    assert spans[0].start == dt.date(2025, 12, 2) + dt.timedelta(days=5)


def test_no_infusion_no_windows() -> None:
    events, _ = journey()
    assert visit_windows([e for e in events if e["event_type"] != "CarTInfused"], PROTOCOL.schedule) == []


def test_findings_per_week_stacks_every_category_with_a_legend() -> None:
    monday = dt.date(2025, 12, 1)
    rows = [(monday + dt.timedelta(weeks=i % 5, days=i % 3), c, i + 1) for i, c in enumerate(CATEGORIES)]
    rows.append((monday, "NEW CATEGORY", 1))
    svg = findings_per_week_svg(rows, title="Findings")
    root = ET.fromstring(svg)
    assert svg.startswith("<svg ")
    assert root.get("role") == "img"
    text = " ".join("".join(el.itertext()) for el in root.iter(f"{SVG}text"))
    for category in (*CATEGORIES, "NEW CATEGORY"):
        assert category in text
    assert "2025-W49" in text  # the ISO week of Monday 1 December 2025


@pytest.mark.parametrize("rows", [[], [(dt.date(2025, 12, 1), SAFETY_ALERT, 0)]])
def test_no_findings_gives_a_small_picture_saying_so(rows: list[tuple[dt.date, str, int]]) -> None:
    assert "No findings" in "".join(ET.fromstring(findings_per_week_svg(rows)).itertext())


def test_300_events_render_quickly_enough(capsys: pytest.CaptureFixture[str]) -> None:
    types = ["ScreeningLabResulted", "AdverseEventReported", "FollowUpVisitCompleted", "ConsentSigned"]
    events = [event(types[i % 4], INFUSED + dt.timedelta(hours=7 * i), f"L{i}") for i in range(299)]
    events.append(event("CarTInfused", INFUSED))
    findings = [Finding(f"f{i}", "VISIT-01", "deviation", "minor", INFUSED + dt.timedelta(days=i)) for i in range(20)]
    windows = visit_windows(events, PROTOCOL.schedule)
    participant_timeline_svg(events, findings, windows)  # warm the font cache first
    began = time.perf_counter()
    svg = participant_timeline_svg(events, findings, windows)
    elapsed = time.perf_counter() - began
    assert sum(1 for i in ids(svg) if i.startswith("event-")) == 300
    with capsys.disabled():  # informative only: timings are no assertion on a shared machine
        print(f"\ntimeline of 300 events and 20 findings: {elapsed * 1000:.0f} ms, {len(svg) // 1024} KiB")
