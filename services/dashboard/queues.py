"""Work queues: my findings, nobody's findings, overdue findings; and who a finding may be assigned to.

Every queue holds unresolved findings only (open or acknowledged, not superseded):

- **mine**: assigned to the user asking;
- **unassigned**: assigned to nobody;
- **overdue**: whose event happened more than the study's ``overdue_days`` ago
  (``--overdue-days``, default 14). The reporting clock of a deviation runs from the event, not
  from when TrialGuard raised it (a finding raised late about an old event is late already). When
  the protocol declares due times (safety clocks), overdue is to mean past that due time.

The assignee of a finding is one of the study's users: an enabled user with a role in the
finding's study who may see the finding's site. Anyone else is refused in plain words, so a typo
does not assign a finding to nobody.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import replace
from typing import Final

from services.dashboard import queries
from services.dashboard.roles import User, may_read_site
from services.dashboard.users import UserStore

QUEUES: Final = (("mine", "Assigned to me"), ("unassigned", "Unassigned"), ("overdue", "Overdue"))
"""Each queue's name in URLs (``?queue=``) and its label in the navigation."""


def overdue_before(days: int, now: dt.datetime | None = None) -> str:
    """The event time (UTC text, as the read model keeps it) before which a finding is overdue."""
    moment = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def resolve(found: queries.FindingFilter, user: User, cutoff: str) -> queries.FindingFilter:
    """The filter with its queue made concrete: "mine" is always the asking user's own."""
    if found.queue == "mine":
        return replace(found, assignee=user.name, overdue_before=cutoff)
    return replace(found, overdue_before=cutoff)


def counts(db: sqlite3.Connection, user: User, site_scope: str | None, cutoff: str) -> dict[str, int]:
    """How many findings each queue holds for this user, under their site scope."""
    return {
        name: queries.finding_total(db, resolve(queries.FindingFilter(queue=name), user, cutoff), site_scope)
        for name, _ in QUEUES
    }


def assignees(users: UserStore, study_id: str, finding_site: str) -> list[str]:
    """The names a finding of a site may be assigned to, by name."""
    return [u.name for u in users.users_in(study_id) if may_read_site(u, finding_site)]
