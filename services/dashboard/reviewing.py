"""Taking a review action: check who may, check the workflow allows it, publish, wait to see it.

The review is a ``FindingReviewed`` event on the finding-reviews topic, published with acks=all:
the page reports it done only once Kafka has it. The read model then folds it like any other
record; the request waits (briefly) for that, so the next page shows the new status.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from contracts import FindingReviewed, ReviewAction, ReviewStatus, ReviewTransitionError, check_transition
from services.dashboard.live import Broadcaster
from services.dashboard.review_forms import ReviewFormError, check_action_for_kind, plain_problems, reason_words
from services.dashboard.roles import Action, User, may_read_site, may_review
from services.dashboard.users import UserStore

log = structlog.get_logger("trialguard.dashboard.reviewing")

Publish = Callable[[FindingReviewed], Awaitable[None]]


class ReviewError(Exception):
    """A review that cannot be taken; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ReviewRequest:
    """What the reviewer asked for (from a form or the API)."""

    action: str
    comment: str | None = None
    reason: str | None = None
    """The code of a reason from the action's controlled list (``review_forms``), or "other"."""
    assignee: str | None = None
    reason_other: str | None = None
    """The reviewer's words for the reason, with "other" only."""


def _blank_to_none(text: str | None) -> str | None:
    return text if text and text.strip() else None


TEXT_USED_BY: dict[str, frozenset[ReviewAction]] = {
    "reason": frozenset({ReviewAction.RESOLVE, ReviewAction.CLOSE}),
    "reason_other": frozenset({ReviewAction.RESOLVE, ReviewAction.CLOSE}),
    "assignee": frozenset({ReviewAction.ASSIGN}),
}
"""The actions that use a reason or an assignee (a comment goes with any action). Anything else
is refused rather than kept in a history nobody can edit: an assignee on a comment would read as
an assignment that never happened."""


def check_fields_used(action: ReviewAction, asked: ReviewRequest) -> None:
    """Refuse a reason or assignee the action does not use.

    Raises:
        ReviewError: 422 naming the field and the actions that use it.
    """
    for name, users in TEXT_USED_BY.items():
        if _blank_to_none(getattr(asked, name)) is not None and action not in users:
            wanted = " or ".join(sorted(a.value for a in users))
            raise ReviewError(422, f"{name}: not used to {action.value} (only to {wanted}); leave it empty.")


def check_assignee(users: UserStore | None, study_id: str, assignee: str | None, finding_site: str) -> None:
    """Refuse an assignee who is not one of the study's users able to see the finding.

    Raises:
        ReviewError: 422 saying who may be chosen.
    """
    if assignee is None or not assignee.strip():
        return
    if users is None:
        raise ReviewError(422, "assignee: the dashboard's users are not known here, so nobody can be assigned")
    candidate = next((u for u in users.users_in(study_id) if u.name == assignee), None)
    if candidate is None:
        raise ReviewError(
            422, f"assignee: {assignee[:64]!r} is not a user of study {study_id}; choose one of the study's users"
        )
    if not may_read_site(candidate, finding_site):
        raise ReviewError(422, f"assignee: {assignee[:64]!r} works for another site and cannot see this finding")


async def take_review(
    db: sqlite3.Connection,
    user: User,
    finding_id: str,
    asked: ReviewRequest,
    *,
    study_id: str,
    publish: Publish,
    live: Broadcaster,
    wait_seconds: float,
    users: UserStore | None = None,
) -> FindingReviewed:
    """Check, publish and wait for one review.

    An assignee must be one of the study's users (``check_assignee`` against ``users``; without
    ``users`` no assignment is taken).

    Raises:
        ReviewError: 404 unknown finding (or one the user may not see), 403 the role may not,
            409 the workflow does not allow it from the current status, 422 a bad request (a
            field missing, or one the action does not use).
    """
    try:
        action = ReviewAction(asked.action)
    except ValueError:
        raise ReviewError(422, f"There is no review action “{asked.action[:40]}”.") from None
    check_fields_used(action, asked)
    row = db.execute(
        "SELECT site_id, participant_id, status, kind FROM findings WHERE finding_id = ?", (finding_id,)
    ).fetchone()
    if row is None or not may_read_site(user, row["site_id"]):
        raise ReviewError(404, "no such finding")
    if not may_review(user, Action(action.value), row["site_id"]):
        log.info("review_refused", user=user.name, role=user.role.value, action=action.value)
        raise ReviewError(403, f"a {user.role.value} may not {action.value} findings")
    try:
        check_action_for_kind(action, row["kind"])
    except ReviewFormError as error:
        raise ReviewError(422, str(error)) from None
    try:
        check_transition(ReviewStatus(row["status"]), action)
    except ReviewTransitionError as error:
        raise ReviewError(409, str(error)) from None
    try:
        reason = reason_words(action, row["kind"], asked.reason, asked.reason_other)
    except ReviewFormError as error:
        raise ReviewError(422, str(error)) from None
    try:
        review = FindingReviewed(
            review_id=uuid.uuid4(),
            study_id=study_id,
            site_id=row["site_id"],
            participant_id=row["participant_id"],
            finding_id=uuid.UUID(finding_id),
            action=action,
            actor=user.name,
            role=user.role.value,  # may_review admits only the reviewing roles
            reviewed_at=dt.datetime.now(dt.UTC),
            comment=_blank_to_none(asked.comment),
            reason=reason,
            assignee=_blank_to_none(asked.assignee),
        )
    except ValidationError as error:
        raise ReviewError(422, plain_problems(error.errors())) from None
    # After the contract's own checks: a name that is not a name is said so first.
    check_assignee(users, study_id, review.assignee, row["site_id"])
    waiter = live.expect_review(str(review.review_id))
    await publish(review)
    log.info("review_published", user=user.name, role=user.role.value, action=action.value)
    if not await live.wait_for_review(str(review.review_id), waiter, wait_seconds):
        log.warning("review_not_yet_in_read_model", seconds=wait_seconds)
    return review
