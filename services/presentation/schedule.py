"""The follow-up visit windows of one participant, as the dashboard shades them.

The windows come from the protocol's own schedule (``Protocol.schedule``, a tuple of
``protocol.model.VisitWindow``) and are counted the way the VISIT-01/02 rules count them
(protocol/nct06904729/follow_up.py): in calendar days from the date of the first CAR-T infusion,
in the infusion's own UTC offset, both ends included. Re-typing the days here would let the picture
and the rules drift apart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from protocol.model import VisitWindow

INFUSION = "CarTInfused"


@dataclass(frozen=True)
class VisitWindowSpan:
    """One visit's window on the calendar.

    Attributes:
        visit: the visit code of the schedule, e.g. "D7".
        start: the first day a visit counts as in window.
        end: the last day a visit counts as in window (included, as in ``VisitWindow.allows``).
        day: the nominal day after infusion.
    """

    visit: str
    start: dt.date
    end: dt.date
    day: int


def field(item: object, name: str, default: Any = None) -> Any:
    """A field of a dict-like or attribute-bearing record: the web app passes either."""
    if isinstance(item, Mapping):
        return item.get(name, default)
    return getattr(item, name, default)


def visit_windows(events: Iterable[object], schedule: Sequence[VisitWindow]) -> list[VisitWindowSpan]:
    """The visit windows of a participant, derived from the protocol schedule and their infusion.

    Args:
        events: the participant's events in log order, each a mapping or object with
            ``event_type`` and ``occurred_at`` (an aware datetime). Contract events qualify.
        schedule: the protocol's follow-up schedule, e.g. ``PROTOCOL.schedule``.

    Returns:
        One span per scheduled visit, in schedule order; empty when there was no infusion.
    """
    # The first infusion in log order anchors the schedule, as state.infusions_at[0] does for the rules.
    infused_at = next((field(e, "occurred_at") for e in events if field(e, "event_type") == INFUSION), None)
    if infused_at is None:
        return []
    infused_on: dt.date = infused_at.date()
    return [
        VisitWindowSpan(
            visit=v.code,
            start=infused_on + dt.timedelta(days=v.day - v.window_days),
            end=v.closes_after(infused_on),
            day=v.day,
        )
        for v in schedule
    ]
