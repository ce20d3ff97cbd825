"""A finding's review status in the read model: the fold of its ``FindingReviewed`` events.

Each review is kept as it came (reviews are never edited or deleted) and the finding's status,
status time and assignee are folded again from all of its reviews, in log order, whenever one
arrives, the finding arrives after its reviews, or the access log tells something new of a
reviewer. A review is applied only when it passes, in this order:

1. its claims (``roles.check_review_authority``): the claimed role may take the action, and the
   review names the finding's site;
2. the reviewer's authority then (``access.check_actor_authority``): the access log says the
   actor was an enabled user with that role (and, for a site user, that site) at ``reviewed_at``;
3. the workflow (``contracts.reviews.check_transition``): the action is allowed from the status
   the earlier reviews left.

A review that fails stays in the history with its outcome saying why, and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import structlog
from pydantic import ValidationError

from contracts import FindingReviewed, ReviewAction, ReviewStatus
from contracts.reviews import ReviewTransitionError, check_transition
from services.dashboard.access import authority_history, check_actor_authority
from services.dashboard.roles import ReviewAuthorityError, check_review_authority

log = structlog.get_logger("trialguard.dashboard.reviews")


def utc_text(value: dt.datetime) -> str:
    """An aware time as sortable UTC text (``2026-03-02T00:15:00+00:00``)."""
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def status_priority(kind: str, status: ReviewStatus | str) -> int:
    """0 for a safety alert nobody has resolved or closed: it comes first by default."""
    return 0 if kind == "alert" and status in (ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED) else 1


def keep_review(
    db: sqlite3.Connection, value: bytes | None, position: int, where: tuple[int, int]
) -> FindingReviewed | None:
    """Keep one finding-reviews record; the review when it is new, None when it was kept before
    or breaks the contract (logged with its partition and offset, ``where``, and skipped)."""
    try:
        review = FindingReviewed.model_validate_json(value or b"")
    except ValidationError as error:
        log.warning("review_unreadable", partition=where[0], offset=where[1], problems=error.error_count())
        return None
    inserted = db.execute(
        "INSERT OR IGNORE INTO reviews (review_id, finding_id, position, action, actor, role, reviewed_at,"
        " comment, reason, assignee, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(review.review_id),
            str(review.finding_id),
            position,
            review.action.value,
            review.actor,
            review.role,
            utc_text(review.reviewed_at),
            review.comment,
            review.reason,
            review.assignee,
            review.model_dump_json(),
        ),
    ).rowcount
    return review if inserted else None


def _check_authority(db: sqlite3.Connection, review: FindingReviewed, finding_site: str) -> None:
    check_review_authority(review, finding_site)
    check_actor_authority(review, authority_history(db, review.actor))


def refold(db: sqlite3.Connection, finding_id: str) -> None:
    """Fold a finding's status and assignee again from all of its reviews, in log order."""
    finding = db.execute("SELECT kind, site_id FROM findings WHERE finding_id=?", (finding_id,)).fetchone()
    if finding is None:
        return
    status, status_at, assignee = ReviewStatus.OPEN, None, None
    reviews = db.execute(
        "SELECT review_id, action, reviewed_at, assignee, body FROM reviews WHERE finding_id=? ORDER BY position",
        (finding_id,),
    ).fetchall()
    for review in reviews:
        try:
            # A review that did not come through the dashboard's checks (a forged or stale
            # producer) stays in the history, marked as not applied.
            _check_authority(db, FindingReviewed.model_validate_json(review["body"]), finding["site_id"])
        except ReviewAuthorityError as refused:
            log.warning("review_not_authorized", review_id=review["review_id"])
            db.execute(
                "UPDATE reviews SET outcome=? WHERE review_id=?", (f"not authorized: {refused}", review["review_id"])
            )
            continue
        try:
            after = check_transition(status, ReviewAction(review["action"]))
        except ReviewTransitionError as refused:
            # Two people acted at once: the later review stays in the history, marked as not applied.
            db.execute("UPDATE reviews SET outcome=? WHERE review_id=?", (str(refused), review["review_id"]))
            continue
        db.execute("UPDATE reviews SET outcome=NULL WHERE review_id=?", (review["review_id"],))
        if review["action"] == "assign":
            assignee = review["assignee"]
        if after is not status:
            status, status_at = after, review["reviewed_at"]
    db.execute(
        "UPDATE findings SET status=?, status_at=?, assignee=?,"
        " priority=CASE WHEN superseded_by IS NULL THEN ? ELSE 1 END WHERE finding_id=?",
        (status.value, status_at, assignee, status_priority(finding["kind"], status), finding_id),
    )


def refold_reviews_by(db: sqlite3.Connection, actor: str) -> None:
    """Fold again every finding ``actor`` reviewed: the access log (another topic, read at its own
    pace) has just told something of them, which may change whether their reviews apply."""
    for row in db.execute("SELECT DISTINCT finding_id FROM reviews WHERE actor=?", (actor,)).fetchall():
        refold(db, row["finding_id"])
