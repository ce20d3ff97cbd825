"""A participant's story for the timeline page and API: events, visit windows, findings, lifecycle.

The SVG is cached per participant until the read model holds a new event or finding for them
(matplotlib takes a noticeable fraction of a second per picture; the picture only changes with
the data).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Any
from urllib.parse import quote

from contracts.units import analyte_for
from protocol.model import Protocol
from services.dashboard import queries
from services.dashboard.event_values import event_values
from services.dashboard.times import event_time_text
from services.presentation.charts import participant_timeline_svg, visit_windows
from services.presentation.lifecycle import lifecycle

CACHE_SIZE = 256

_cache: OrderedDict[tuple[str, str], str] = OrderedDict()
_cache_lock = threading.Lock()


def label(event: dict[str, Any]) -> str:
    """A few words about an event for the picture and the table (never its free text)."""
    payload = event["body"].get("payload", {})
    kind = event["event_type"]
    if kind == "ScreeningLabResulted":
        analyte = analyte_for(str(payload.get("loinc", "")))
        return analyte.name if analyte else str(payload.get("loinc", ""))
    if kind == "ConsentSigned":
        return str(payload.get("signer", ""))
    if kind == "ParticipantEnrolled":
        return str(payload.get("arm", ""))
    if kind == "FollowUpVisitCompleted":
        return str(payload.get("visit", ""))
    if kind == "AdverseEventReported":  # the same words as the tooltip, which is its accessible name
        return event_values(kind, payload)
    if kind == "EligibilityConfirmed":
        return "eligible" if payload.get("eligible") else "not eligible"
    return ""


def timeline_of(app: Any, participant_id: str, time_mode: str = "site") -> dict[str, Any] | None:
    """Everything the participant page shows, or None for a participant the read model never saw.

    ``time_mode`` ("site" or "utc", see ``times``) is how the markers' tooltips show event times.
    """
    protocol: Protocol = app.state.protocol
    with app.state.store.reader() as db:
        events = queries.events_of(db, participant_id)
        findings = queries.findings_of(db, participant_id)
        registered = queries.registered_site(db, participant_id)
    if not events and not findings:
        return None
    # Scoped by the registered site; before a registration is read, by the earliest event's.
    site_id = registered or (events[0]["site_id"] if events else findings[0]["site_id"])
    drawn = [
        {
            "event_id": e["event_id"],
            "event_type": e["event_type"],
            "label": label(e),
            "values": event_values(e["event_type"], e["body"].get("payload", {})),
            "occurred_at": dt.datetime.fromisoformat(e["body"]["occurred_at"]),
        }
        for e in events
    ]
    for d in drawn:
        d["link"] = f"#event-{d['event_id']}"  # its row in the events table below the picture
        d["tooltip"] = _tooltip(d["event_type"], d["values"], event_time_text(d["occurred_at"], time_mode))
    windows = visit_windows(
        [e["body"] | {"occurred_at": d["occurred_at"]} for e, d in zip(events, drawn, strict=True)], protocol.schedule
    )
    marks = [
        f
        | {
            "occurred_at": dt.datetime.fromisoformat(f["occurred_at"]),
            "link": f"/findings/{quote(str(f['finding_id']), safe='')}",
            "tooltip": _tooltip(
                f["rule_id"],
                f"{f['kind']}{', ' + f['severity'] if f.get('severity') else ''}, {f['status']}",
                f["term"],
                event_time_text(f["occurred_at"], time_mode),
            ),
        }
        for f in findings
    ]
    newest_finding = max((f["seq"] for f in findings), default=0)
    # Reviews change a finding's status in its tooltip: the newest status change is in the key too.
    reviewed = max((str(f.get("status_at") or "") for f in findings), default="")
    version = f"{len(events)}:{events[-1]['event_id'] if events else ''}:{len(findings)}:{newest_finding}:{reviewed}"
    # The study is part of the key: two studies may both have a participant P-001.
    svg = cached_svg(
        (f"{app.state.store.topics.study_id}/{participant_id}", f"{version}:{time_mode}"),
        lambda: participant_timeline_svg(drawn, marks, windows, title=f"Participant {participant_id}"),
    )
    return {
        "participant_id": participant_id,
        "site_id": site_id,
        "lifecycle": lifecycle(events, protocol),
        "events": [
            {
                "event_id": d["event_id"],
                "event_type": d["event_type"],
                "occurred_at": e["body"]["occurred_at"],
                "label": d["label"],
                "values": d["values"],
                "event": e["body"],
            }
            for e, d in zip(events, drawn, strict=True)
        ],
        "visit_windows": [
            {"visit": w.visit, "day": w.day, "start": w.start.isoformat(), "end": w.end.isoformat()} for w in windows
        ],
        "findings": findings,
        "svg": svg,
    }


def _tooltip(*parts: str) -> str:
    return " · ".join(p for p in parts if p)


def cached_svg(key: tuple[str, str], render: Any) -> str:
    """The SVG ``render()`` makes, kept while ``key`` (which names the data drawn) is unchanged."""
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    svg = str(render())
    with _cache_lock:
        _cache[key] = svg
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return svg
