"""Follow-up: each visit inside its window after infusion (VISIT-01), none missed (VISIT-02).

A missed visit is decided when an event proves its window has closed: a later visit, any other
event, or a ClockTicked watermark. Nothing reads the wall clock. No visit is due once the
participant is withdrawn or has withdrawn consent (a visit then would be CONSENT-02).
"""

from __future__ import annotations

import datetime as dt

from durable.lang import m

from contracts import Category, ParticipantEvent, Severity
from contracts.participant_events import FollowUpVisitCompleted
from protocol.model import Facts, OncePer, RuleSpec, deviation, facts_on
from protocol.nct06904729.design import VISIT_SCHEDULE
from protocol.nct06904729.terms import Terms
from protocol.state import ParticipantState


@facts_on()
def follow_up_facts(terms: Terms, state: ParticipantState, event: ParticipantEvent) -> Facts:
    if not state.infusions_at or state.withdrawn_at is not None or state.consent_withdrawal is not None:
        return {}  # no visits are due before infusion, nor once the participant or their consent has left
    infused_on = state.infusions_at[0].date()
    today = event.occurred_at.date()
    this_visit = event.payload.visit if isinstance(event, FollowUpVisitCompleted) else None
    if this_visit is None and not _any_window_closed_undone(terms, state, infused_on, today):
        return {}  # the common case: nothing to say, no match to attempt
    facts: Facts = {"infused_on": infused_on.isoformat(), "event_date": today.isoformat()}
    if this_visit is not None and (window := terms.schedule_by_code.get(this_visit)) is not None:
        day = (today - infused_on).days
        facts.update(
            visit=this_visit,
            visit_day=day,
            visit_window=f"day {window.day - window.window_days}..{window.day + window.window_days}",
            visit_in_window=window.allows(day),
        )
    missed = [
        code
        for code, closes in terms.windows_closing(infused_on)
        if code not in state.visits_done and code != this_visit and closes < today
    ]
    if missed:
        facts["missed_visits"] = missed
    return facts


def _any_window_closed_undone(terms: Terms, state: ParticipantState, infused_on: dt.date, today: dt.date) -> bool:
    for code, closes in terms.windows_closing(infused_on):  # in the order they close
        if closes >= today:
            return False  # this window and every later one are still open
        if code not in state.visits_done:
            return True
    return False


def rules(terms: Terms) -> tuple[RuleSpec, ...]:
    """The section's rules in a version (its schedule decides the facts, not the conditions)."""
    return (
        deviation(
            "VISIT-01",
            category=Category.VISIT_SCHEDULE,
            severity=Severity.MINOR,
            reference="Follow-up schedule",
            term="Follow-up visit outside its window",
            when=m.visit_in_window == False,
            evidence=("visit", "visit_day", "visit_window", "infused_on"),
            once_per=OncePer.KEY,
            key="visit",
            parameters=(VISIT_SCHEDULE,),
        ),
        deviation(
            "VISIT-02",
            category=Category.VISIT_SCHEDULE,
            severity=Severity.MINOR,
            reference="Follow-up schedule",
            term="Follow-up visit missed (its window closed with no visit)",
            when=+m.missed_visits,
            evidence=("infused_on", "event_date"),
            once_per=OncePer.KEY,
            for_each="missed_visits",
            item_name="visit",
            parameters=(VISIT_SCHEDULE,),
        ),
    )
