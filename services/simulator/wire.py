"""A journey as contract-v1 JSON lines: its events with the scheduler's weekly ``ClockTicked``
watermarks merged in, in the participant's log order.

The lines are formatted from a template rather than through ``json`` for speed (a million-event
history is built for the benchmark); payloads and sources are still encoded by ``json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from services.simulator.clock import DAY, STUDY_ID, stamp
from services.simulator.ids import event_id
from services.simulator.journey import Ev, Journey

_ENCODE = json.JSONEncoder(separators=(",", ":")).encode

_SOURCES: dict[tuple[str, str, int], str] = {}


def _source(kind: str, site: str, actor: int) -> str:
    key = (kind, site, actor)
    text = _SOURCES.get(key)
    if text is None:
        suffix = site.lower().replace("-", "")
        system, who = {
            "edc": (f"edc.{suffix}", f"crc-{actor % 6 + 1:02d}"),
            "lis": (f"lis.{suffix}", f"tech-{actor % 12 + 1:02d}"),
            "pathology": (f"pathology.{suffix}", f"path-{actor % 3 + 1:02d}"),
            "ctl": (f"ctl.{suffix}", f"nurse-{actor % 4 + 1:02d}"),
        }[kind]
        text = _SOURCES[key] = _ENCODE({"system": system, "actor": who})
    return text


_TICK_SOURCE = _ENCODE({"system": "scheduler.trialguard"})
_LINE = (
    '{"event_id":"%s","event_type":"%s","schema_version":1,"study_id":"' + STUDY_ID + '","site_id":"%s",'
    '"participant_id":"%s","occurred_at":"%s","recorded_at":"%s","source":%s,"payload":%s}\n'
)


def lines(journey: Journey, events: list[Ev]) -> Iterator[tuple[int, str]]:
    """The participant's JSON lines (watermarks merged in), in their log order, with event times."""
    pid, site, seed, index = journey.pid, journey.site, journey.seed, journey.index
    ticks = list(journey.ticks(events))
    merged: list[tuple[int, Ev | None]] = [(day * DAY, None) for day in ticks]
    merged += [(e.t, e) for e in events]
    merged.sort(key=lambda item: item[0])  # stable; no event but a watermark falls on midnight
    for k, (t, e) in enumerate(merged):
        eid = event_id(seed, pid, k)
        occurred = stamp(t * 60)
        if e is None:
            yield t, _LINE % (eid, "ClockTicked", site, pid, occurred, stamp(t * 60 + 2), _TICK_SOURCE, "{}")
        else:
            source = _source(e.source, site, index + k if e.source == "lis" else index)
            recorded = stamp(t * 60 + e.delay)
            yield t, _LINE % (eid, e.etype, site, pid, occurred, recorded, source, _ENCODE(e.payload))
