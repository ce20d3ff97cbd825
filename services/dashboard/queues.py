"""Work queues: my findings, nobody's findings, overdue findings; and who a finding may be assigned to.

Every queue holds unresolved findings only (open or acknowledged, not superseded):

- **mine**: assigned to the user asking;
- **unassigned**: assigned to nobody;
- **overdue**: a safety alert whose rule has a reporting clock (declared by the protocol
  package) past its due time; any other finding whose event happened more than the study's
  ``overdue_days`` ago (``--overdue-days``, default 14). Both clocks run from the event, not
  from when TrialGuard raised the finding (a finding raised late about an old event is late already).

The assignee of a finding is one of the study's users: an enabled user with a role in the
finding's study who may see the finding's site. Anyone else is refused in plain words, so a typo
does not assign a finding to nobody.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from starlette.requests import Request

from protocol.reporting import ReportingClock
from services.dashboard import queries
from services.dashboard.clocks import overdue_cutoffs
from services.dashboard.roles import User, may_read_site
from services.dashboard.study_scope import current_study
from services.dashboard.users import UserStore

QUEUES: Final = (("mine", "Assigned to me"), ("unassigned", "Unassigned"), ("overdue", "Overdue"))
"""Each queue's name in URLs (``?queue=``) and its label in the navigation."""


def overdue_before(days: int, now: dt.datetime | None = None) -> str:
    """The event time (UTC text, as the read model keeps it) before which a finding is overdue."""
    moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class OverdueCut:
    """When an unresolved finding is overdue: an alert with a reporting clock past its due time
    (``clocks.overdue_cutoffs``), any other finding once its event is older than ``before``."""

    before: str
    alerts: tuple[tuple[str, str], ...] = ()


def overdue_cut(days: int, clocks: Mapping[str, ReportingClock], now: dt.datetime) -> OverdueCut:
    """The study's overdue rule at ``now``: its overdue days, and its protocol's reporting clocks."""
    return OverdueCut(overdue_before(days, now), overdue_cutoffs(clocks, now))


def study_overdue_cut(request: Request) -> OverdueCut:
    """The overdue rule of the request's study now (its setting, its protocol's clocks)."""
    state = request.app.state
    study = current_study()
    return overdue_cut(state.settings.overdue_days_of(study), state.clocks.of(study), state.now())


def resolve(found: queries.FindingFilter, user: User, cut: OverdueCut) -> queries.FindingFilter:
    """The filter with its queue made concrete: "mine" is always the asking user's own."""
    found = replace(found, overdue_before=cut.before, overdue_alerts=cut.alerts)
    if found.queue == "mine":
        return replace(found, assignee=user.name)
    return found


def counts(db: sqlite3.Connection, user: User, site_scope: str | None, cutoff: OverdueCut) -> dict[str, int]:
    """How many findings each queue holds for this user, under their site scope."""
    return {
        name: queries.finding_total(db, resolve(queries.FindingFilter(queue=name), user, cutoff), site_scope)
        for name, _ in QUEUES
    }


def assignees(users: UserStore, study_id: str, finding_site: str) -> list[str]:
    """The names a finding of a site may be assigned to, by name."""
    return [u.name for u in users.users_in(study_id) if may_read_site(u, finding_site)]
