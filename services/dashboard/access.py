"""The access log in the read model: every account and credential change, and each user's authority over time.

The dashboard folds ``<namespace>.<study>.access-log`` (``AccessChanged`` events, one partition)
into the ``access_log`` table. Each user event carries the user's role, site and whether they
were enabled after the change, so the table is also each user's history of authority:
``authority_at`` answers what a user could do at a given instant — what a review's authority is
checked against (21 CFR 11.10(d), (g)).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import structlog
from pydantic import ValidationError

from contracts import AccessAction, AccessChanged, FindingReviewed
from services.dashboard.roles import ReviewAuthorityError

log = structlog.get_logger("trialguard.dashboard.access")

SHOWN: Final = 100
"""Access-log rows on the operations page (newest first); the topic keeps them all."""


@dataclass(frozen=True)
class Authority:
    """What a user could do from an instant on, as the access log says.

    Attributes:
        changed_at: When this state began (UTC).
        role: The user's role.
        site: A site user's site; None for other roles.
        enabled: False when disabled or removed.
        removed: The user (this generation) no longer exists.
    """

    changed_at: dt.datetime
    role: str
    site: str | None
    enabled: bool
    removed: bool = False


def authority_at(history: Sequence[Authority], when: dt.datetime) -> tuple[str, str | None, bool] | None:
    """A user's ``(role, site, enabled)`` at ``when``, from their history in log order.

    Pure: the caller reads the history (``authority_history``). The state in force is the last one
    that began at or before ``when``; a change at the same instant as an act is in force for it.

    Returns:
        None when the user did not exist at ``when`` (not added yet, or removed).
    """
    current: Authority | None = None
    for state in history:
        if state.changed_at <= when:
            current = state
    if current is None or current.removed:
        return None
    return current.role, current.site, current.enabled


def authority_history(db: sqlite3.Connection, user: str) -> list[Authority]:
    """A user's authority over time, from the read model, in log order (every generation)."""
    rows = db.execute(
        "SELECT changed_at, action, role, site, enabled FROM access_log"
        " WHERE subject_kind='user' AND subject=? ORDER BY position",
        (user,),
    ).fetchall()
    return [
        Authority(
            dt.datetime.fromisoformat(row["changed_at"]),
            row["role"],
            row["site"],
            bool(row["enabled"]),
            removed=row["action"] == AccessAction.USER_REMOVED.value,
        )
        for row in rows
    ]


def check_actor_authority(review: FindingReviewed, history: Sequence[Authority]) -> None:
    """Guard the fold: the reviewer held the role (and site) the review claims when they acted.

    ``history`` is the actor's authority over time (``authority_history``). An actor the access
    log has never named is judged by the review's claims alone (``roles.check_review_authority``):
    users made before the access log existed have no history, and their reviews must keep their
    effect. Inventing a name gains nothing in a secured deployment: only the dashboard may write
    reviews and the access log alike (see the README's ACL table), and without ACLs whoever can
    forge a review can forge an access-log entry too.

    Raises:
        ReviewAuthorityError: the actor was not a user then (not yet added, or removed), was
            disabled, held another role, or, as a site user, another site.
    """
    if not history:
        return
    actor, when = review.actor, review.reviewed_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    held = authority_at(history, review.reviewed_at)
    if held is None:
        raise ReviewAuthorityError(f"{actor!r} was not a user at {when} (access log)")
    role, site, enabled = held
    if not enabled:
        raise ReviewAuthorityError(f"{actor!r} was disabled at {when} (access log)")
    if role != review.role:
        raise ReviewAuthorityError(f"{actor!r} was {role!r}, not {review.role!r}, at {when} (access log)")
    if role == "site" and site != review.site_id:
        raise ReviewAuthorityError(f"{actor!r} was a user of site {site!r}, not {review.site_id!r}, at {when}")


def fold_access_change(db: sqlite3.Connection, value: bytes | None, position: int) -> AccessChanged | None:
    """Keep one access-log record; None for one that breaks the contract (logged, skipped)."""
    try:
        change = AccessChanged.model_validate_json(value or b"")
    except ValidationError as error:
        log.warning("access_change_unreadable", position=position, problems=error.error_count())
        return None
    db.execute(
        "INSERT OR IGNORE INTO access_log (position, change_id, changed_at, action, operator, via, subject_kind,"
        " subject, generation, role, site, enabled, token_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            position,
            str(change.change_id),
            change.changed_at.astimezone(dt.UTC).isoformat(timespec="seconds"),
            change.action.value,
            change.operator,
            change.via,
            change.subject_kind,
            change.subject,
            change.generation,
            change.role,
            change.site,
            int(change.enabled),
            change.token_id,
        ),
    )
    return change


def recent_changes(db: sqlite3.Connection, limit: int = SHOWN) -> list[sqlite3.Row]:
    """The newest access-log rows, newest first."""
    return db.execute(
        "SELECT changed_at, action, operator, via, subject_kind, subject, role, site, enabled, token_id"
        " FROM access_log ORDER BY position DESC LIMIT ?",
        (limit,),
    ).fetchall()
