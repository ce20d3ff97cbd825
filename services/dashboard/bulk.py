"""Bulk review: one action, with one reason or comment, on many findings, all or nothing.

Each finding still gets its own ``FindingReviewed`` event, so the fold, the history and the audit
trail read exactly as if the reviewer had taken the action finding by finding. What is different
is the check and the publication:

- every finding is checked first (exists and is in the user's site scope, the role may take the
  action on it, the workflow allows it from its status); when any one fails, the whole batch is
  refused with a plain error naming the findings, and nothing is published;
- the events go to Kafka in one transaction (``batch_publish``): readers with ``read_committed``
  (the read model, the audit) see all of them or none.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Final

import structlog
from pydantic import ValidationError

from contracts import FindingReviewed, ReviewAction, ReviewStatus
from contracts.reviews import ALLOWED_FROM
from services.dashboard import queries
from services.dashboard.live import Broadcaster
from services.dashboard.review_forms import (
    TITLES,
    Reason,
    ReviewFormError,
    check_action_for_kind,
    plain_problems,
    reason_words,
    reasons_for,
)
from services.dashboard.reviewing import ReviewError, ReviewRequest, check_fields_used
from services.dashboard.roles import GRANTS, Action, User, may_read_site

log = structlog.get_logger("trialguard.dashboard.bulk")

PublishBatch = Callable[[Sequence[FindingReviewed]], Awaitable[None]]
"""Publishes a batch of reviews in one Kafka transaction: returns once committed, raises when not."""

BULK_ACTIONS: Final = (
    ReviewAction.ACKNOWLEDGE,
    ReviewAction.ASSIGN,
    ReviewAction.COMMENT,
    ReviewAction.RESOLVE,
    ReviewAction.CLOSE,
)
"""The actions offered in bulk (reopening stays one finding at a time: it undoes a decision)."""

MAX_SELECTED: Final = queries.MAX_LIMIT
"""The most findings selected one by one (a page's rows at most; the request body stays small)."""

MAX_MATCHING: Final = 5_000
"""The most findings "all matching this filter" may cover in one batch (one Kafka transaction)."""

OUT_OF_SCOPE: Final = "not found, or not of your site"
"""The one problem for a finding that does not exist and one of another site: they read the same."""

NAMED_AT_MOST: Final = 20
"""How many finding ids an error names per problem before it says how many more."""


class BulkRefusedError(ReviewError):
    """The whole batch was refused; ``problems`` maps each problem to the finding ids it concerns."""

    def __init__(self, status: int, message: str, problems: dict[str, list[str]] | None = None) -> None:
        super().__init__(status, message)
        self.problems = problems or {}


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:NAMED_AT_MOST])
    return shown + (f" and {len(ids) - NAMED_AT_MOST} more" if len(ids) > NAMED_AT_MOST else "")


def check_selection(finding_ids: Iterable[str], limit: int = MAX_SELECTED) -> list[str]:
    """The selected ids, each once, in order; every one a finding id (a UUID).

    Raises:
        BulkRefusedError: 422 when none, more than ``limit``, or some are not finding ids.
    """
    unique = list(dict.fromkeys(i.strip().lower() for i in finding_ids if i.strip()))
    if not unique:
        raise BulkRefusedError(422, "finding_ids: select at least one finding")
    if len(unique) > limit:
        raise BulkRefusedError(422, f"finding_ids: {len(unique)} selected; at most {limit} in one bulk review")
    malformed = []
    for finding_id in unique:
        try:
            uuid.UUID(finding_id)
        except ValueError:
            malformed.append(finding_id[:40])
    if malformed:
        raise BulkRefusedError(422, f"finding_ids: not finding ids: {_names(malformed)}")
    return unique


def matching_ids(
    db: sqlite3.Connection, found: queries.FindingFilter, site_scope: str | None, expected_total: int
) -> list[str]:
    """Every finding under the filter (and the user's site scope), when they are the number the user saw.

    Raises:
        BulkRefusedError: 409 when the filter now matches another number of findings (new ones
            arrived, or others were reviewed), 422 when more than ``MAX_MATCHING``.
    """
    total = queries.finding_total(db, found, site_scope)
    if total != expected_total:
        raise BulkRefusedError(
            409,
            f"the filter now matches {total} findings, not the {expected_total} shown: nothing recorded; look again",
        )
    if total > MAX_MATCHING:
        raise BulkRefusedError(422, f"{total} findings match; at most {MAX_MATCHING} in one bulk review: filter more")
    where, values = found.where(site_scope)
    rows = db.execute(f"SELECT finding_id FROM findings{where} ORDER BY seq", values).fetchall()
    return [str(row[0]) for row in rows]


def plan_reviews(
    db: sqlite3.Connection,
    user: User,
    finding_ids: Sequence[str],
    asked: ReviewRequest,
    *,
    study_id: str,
    now: dt.datetime,
) -> list[FindingReviewed]:
    """One ``FindingReviewed`` per finding, or a refusal of them all.

    Args:
        db: the read model.
        user: the reviewer; the role and site scope are checked for every finding.
        finding_ids: the findings, each once (``check_selection`` or ``matching_ids``).
        asked: the action and its one reason (a code of the action's controlled list, or "other"
            with words), comment or assignee, the same for every finding.
        study_id: the study the reviews are of.
        now: the reviews' ``reviewed_at`` (one act, one time).

    Raises:
        BulkRefusedError: 403 the role may not take the action, or a finding is unknown or outside
            the user's site (the two read the same, so a site user learns nothing of other sites);
            422 a bad action or field, an action the finding's kind does not take (closing a
            safety alert) or a reason not on its kind's list; 409 the workflow does not allow the
            action from some findings' status. The message names the findings.
    """
    try:
        action = ReviewAction(asked.action)
    except ValueError:
        raise BulkRefusedError(422, f"unknown action {asked.action[:40]!r}") from None
    if action not in BULK_ACTIONS:
        offered = ", ".join(a.value for a in BULK_ACTIONS)
        raise BulkRefusedError(422, f"action: {action.value} is taken one finding at a time (in bulk: {offered})")
    try:
        check_fields_used(action, asked)
    except ReviewError as error:
        raise BulkRefusedError(error.status, error.message) from None
    if Action(action.value) not in GRANTS[user.role].review:
        log.info("bulk_review_refused", user=user.name, role=user.role.value, action=action.value, why="role")
        raise BulkRefusedError(
            403,
            f"a {user.role.value} may not {action.value} findings: nothing was recorded ({len(finding_ids)} selected)",
        )
    rows = _rows(db, finding_ids)
    problems: dict[str, list[str]] = {}
    form_problems: set[str] = set()
    reasons: dict[str, str | None] = {}
    for finding_id in finding_ids:
        row = rows.get(finding_id)
        if row is None or not may_read_site(user, row["site_id"]):
            problems.setdefault(OUT_OF_SCOPE, []).append(finding_id)
            continue
        try:
            # The same form rules as one review: no "not a deviation" on a safety alert, and a
            # reason from the action's controlled list for the finding's kind.
            check_action_for_kind(action, row["kind"])
            reasons[finding_id] = reason_words(action, row["kind"], asked.reason, asked.reason_other)
        except ReviewFormError as error:
            problem = f"{row['kind']}: {error}"
            form_problems.add(problem)
            problems.setdefault(problem, []).append(finding_id)
            continue
        if ReviewStatus(row["status"]) not in ALLOWED_FROM[action]:
            problems.setdefault(f"{row['status']}: cannot {action.value} from there", []).append(finding_id)
    if problems:
        status = 403 if OUT_OF_SCOPE in problems else 422 if form_problems else 409
        log.info(
            "bulk_review_refused",
            user=user.name,
            role=user.role.value,
            action=action.value,
            why={403: "scope", 422: "form", 409: "workflow"}[status],
            findings=sum(map(len, problems.values())),
        )
        said = "; ".join(f"{what}: {_names(ids)}" for what, ids in problems.items())
        refused = sum(map(len, problems.values()))
        message = f"nothing was recorded: {refused} of the {len(finding_ids)} findings cannot be {_past(action)} by you"
        raise BulkRefusedError(status, f"{message} — {said}", problems)
    try:
        return [
            FindingReviewed(
                review_id=uuid.uuid4(),
                study_id=study_id,
                site_id=rows[finding_id]["site_id"],
                participant_id=rows[finding_id]["participant_id"],
                finding_id=uuid.UUID(finding_id),
                action=action,
                actor=user.name,
                role=user.role.value,
                reviewed_at=now,
                comment=_text_or_none(asked.comment),
                reason=reasons[finding_id],
                assignee=_text_or_none(asked.assignee),
            )
            for finding_id in finding_ids
        ]
    except ValidationError as error:
        raise BulkRefusedError(422, plain_problems(error.errors())) from None


def _text_or_none(text: str | None) -> str | None:
    return text if text and text.strip() else None


def _past(action: ReviewAction) -> str:
    return {
        ReviewAction.ACKNOWLEDGE: "acknowledged",
        ReviewAction.ASSIGN: "assigned",
        ReviewAction.COMMENT: "commented on",
        ReviewAction.RESOLVE: "resolved",
        ReviewAction.CLOSE: "closed",
    }.get(action, action.value)


def _rows(db: sqlite3.Connection, finding_ids: Sequence[str]) -> dict[str, sqlite3.Row]:
    found: dict[str, sqlite3.Row] = {}
    for start in range(0, len(finding_ids), 500):  # well under SQLite's bound on parameters
        chunk = list(finding_ids[start : start + 500])
        marks = ", ".join("?" * len(chunk))
        sql = f"SELECT finding_id, site_id, participant_id, status, kind FROM findings WHERE finding_id IN ({marks})"
        found |= {row["finding_id"]: row for row in db.execute(sql, chunk).fetchall()}
    return found


async def take_bulk_review(
    reviews: Sequence[FindingReviewed],
    *,
    publish_batch: PublishBatch,
    live: Broadcaster,
    wait_seconds: float,
) -> None:
    """Publish planned reviews in one transaction, then wait (briefly) until the read model has them.

    Raises:
        BulkRefusedError: 503 when Kafka did not commit the transaction: nothing was recorded.
    """
    waiters = {str(r.review_id): live.expect_review(str(r.review_id)) for r in reviews}
    try:
        await publish_batch(reviews)
    except Exception as error:
        for review_id in waiters:
            live.forget_review(review_id)
        log.warning("bulk_review_not_published", reviews=len(reviews), error=type(error).__name__)
        raise BulkRefusedError(503, "Kafka did not take the reviews: nothing was recorded; try again") from None
    first = reviews[0]
    log.info(
        "bulk_review_published", user=first.actor, role=first.role, action=first.action.value, reviews=len(reviews)
    )
    deadline = asyncio.get_running_loop().time() + wait_seconds
    for review_id, waiter in waiters.items():
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        if not await live.wait_for_review(review_id, waiter, left):
            log.warning("bulk_review_not_yet_in_read_model", seconds=wait_seconds)
            for rest in waiters:
                live.forget_review(rest)
            return


def actions_for(user: User) -> list[str]:
    """The bulk actions the user's role may take (none: the page shows no bulk controls)."""
    return [a.value for a in BULK_ACTIONS if Action(a.value) in GRANTS[user.role].review]


def reason_choices() -> list[tuple[str, tuple[Reason, ...]]]:
    """The controlled reasons the bulk form offers, grouped by action and kind ("other" aside)."""
    return [
        (f"{TITLES[action]} · {kind}", reasons_for(action, kind))
        for action in (ReviewAction.RESOLVE, ReviewAction.CLOSE)
        for kind in ("deviation", "alert")
        if reasons_for(action, kind)
    ]
