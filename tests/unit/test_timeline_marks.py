"""The interactive timeline: every marker a titled link, none hiding another, each label its own event's."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from services.presentation.charts import participant_timeline_svg
from services.presentation.marks import SLOTS, Mark, Style, spread
from tests.unit.test_charts import HOSTILE, INFUSED, Finding, event

SVG = "{http://www.w3.org/2000/svg}"
HOUR = dt.timedelta(hours=1)
DOT = Style("o", 6, "#000000")


def groups(svg: str) -> dict[str, ET.Element]:
    return {
        g.get("id", ""): g
        for g in ET.fromstring(svg).iter(f"{SVG}g")
        if g.get("id", "").startswith(("event-", "finding-"))
    }


def position(group: ET.Element) -> tuple[float, float]:
    use = next(group.iter(f"{SVG}use"))
    return float(use.get("x", "nan")), float(use.get("y", "nan"))


def labels(group: ET.Element) -> list[str]:
    return ["".join(t.itertext()) for t in group.iter(f"{SVG}text")]


def test_each_marker_is_a_link_with_its_own_tooltip_escaped() -> None:
    events = [
        event("CarTInfused", INFUSED, event_id="infusion")
        | {"link": "#event-infusion", "tooltip": "CarTInfused · lot A"},
        event("AdverseEventReported", INFUSED + 48 * HOUR, event_id="ae") | {"link": "#event-ae", "tooltip": HOSTILE},
    ]
    findings = [Finding("f1", "SAFETY-CRS3", "alert", None, INFUSED + 48 * HOUR)]
    svg = participant_timeline_svg(events, findings, [])
    found = groups(svg)
    link = found["event-ae"].find(f"{SVG}a")
    assert link is not None
    assert link.get("href") == "#event-ae"
    assert link.get("class") == "mark"
    assert link.get("aria-label") == HOSTILE  # as text: the XML writer escaped it
    assert link.findtext(f"{SVG}title") == HOSTILE
    assert "<script>" not in svg
    # A finding without a given tooltip still says what it is.
    assert found["finding-f1"].find(f"{SVG}a") is None  # no link given, no <a>
    assert ET.fromstring(svg).get("role") == "group"


def test_coincident_markers_are_all_visible_apart() -> None:
    same_time = [event("ScreeningLabResulted", INFUSED, f"LAB{i}", event_id=f"lab{i}") for i in range(12)]
    findings = [Finding(f"f{i}", "ELIG-IN09", "deviation", "important", INFUSED) for i in range(3)]
    svg = participant_timeline_svg(same_time, findings, [])
    places = [position(g) for g in groups(svg).values()]
    assert len(places) == 15
    for i, (x1, y1) in enumerate(places):
        for x2, y2 in places[i + 1 :]:
            assert abs(x1 - x2) >= 8 or abs(y1 - y2) >= 8, "two markers overlap"


def test_spread_uses_the_slots_then_moves_along_time() -> None:
    marks = [Mark(10.0, 3, f"m{i}", DOT) for i in range(len(SLOTS) + 2)] + [Mark(50.0, 3, "later", DOT)]
    placed = {m.gid: m for m in spread(marks, width=1.0)}
    assert sorted(placed[f"m{i}"].y - 3 for i in range(len(SLOTS))) == pytest.approx(sorted(SLOTS))
    assert placed[f"m{len(SLOTS)}"].x == 11.0  # all slots taken at 10: one width later
    assert placed["later"] == Mark(50.0, 3, "later", DOT)  # far away: left where it was


def test_the_adverse_event_lane_labels_each_event_with_its_own_grades() -> None:
    """Issue 20: a grade-3 event drawn with the label of the grade-1 event just before it."""
    mild = event("AdverseEventReported", INFUSED, "CTCAE 1", event_id="mild")
    severe = event("AdverseEventReported", INFUSED + 24 * HOUR, "CTCAE 3, CRS 3, serious", event_id="severe")
    later = event("AdverseEventReported", INFUSED + 15 * 24 * HOUR, "CTCAE 2", event_id="later")
    relapse = event("RelapseReported", INFUSED + 30 * 24 * HOUR, event_id="relapse")  # the axis runs on
    svg = participant_timeline_svg([mild, severe, later, relapse], [], [])
    found = groups(svg)
    # Every label drawn sits inside the group of the event it describes ...
    for gid, expected in (
        ("event-mild", "CTCAE 1"),
        ("event-severe", "CTCAE 3, CRS 3, serious"),
        ("event-later", "CTCAE 2"),
    ):
        assert labels(found[gid]) in ([], [expected])
    # ... the mild event's label would run over the severe event's marker a day later (about 20 pt
    # on this month's axis): left out, and the severe event is labelled with its own grades.
    assert labels(found["event-mild"]) == []
    assert labels(found["event-severe"]) == ["CTCAE 3, CRS 3, serious"]
    assert labels(found["event-later"]) == ["CTCAE 2"]


def test_no_label_is_drawn_over_another_marker() -> None:
    events: list[dict[str, Any]] = [
        event("AdverseEventReported", INFUSED + i * i * 3 * HOUR, f"CTCAE {i % 4 + 1}", event_id=f"ae{i}")
        for i in range(20)
    ]
    svg = participant_timeline_svg(events, [], [])
    found = groups(svg)
    drawn = [gid for gid, g in found.items() if labels(g)]
    assert drawn, "some labels fit"
    assert len(drawn) < len(found), "some labels would overprint: left out"
    markers = {gid: position(g) for gid, g in found.items()}  # SVG units are points
    for gid in drawn:
        x, y = markers[gid]
        # The label's box as Marks estimates it: 6 pt right of its marker, 0.72 em a character.
        left, right = x + 6, x + 6 + len(labels(found[gid])[0]) * 6.5 * 0.72
        for other, (ox, oy) in markers.items():
            if other != gid:
                apart = ox + 3 < left or ox - 3 > right or abs(oy - y) > 3 + 0.7 * 6.5
                assert apart, f"the label of {gid} runs over the marker of {other}"
