"""Contract v1: what the dashboard publishes — a person's review of a finding.

Findings are never edited and reviews are never edited or deleted: the status of a finding is the
fold of its ``FindingReviewed`` events, in topic order (key = participant id, so one participant's
reviews are ordered). Statuses: open → acknowledged → resolved, or closed (not a deviation);
reopen goes back to open. ``assign`` and ``comment`` leave the status as it is.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Final, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_REVIEW_TEXT_CHARS: Final = 2_000
"""The longest comment or reason of one review (a paragraph, not a document)."""

ReviewText = Annotated[str, Field(min_length=1, max_length=MAX_REVIEW_TEXT_CHARS)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]


class ReviewAction(StrEnum):
    """What a reviewer did to a finding."""

    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    COMMENT = "comment"
    RESOLVE = "resolve"
    CLOSE = "close"
    """Closed as not a deviation."""
    REOPEN = "reopen"


class ReviewStatus(StrEnum):
    """Where a finding stands in review."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"
    CLOSED = "closed"


NEEDS_REASON: Final = frozenset({ReviewAction.RESOLVE, ReviewAction.CLOSE})

STATUS_AFTER: Final[dict[ReviewAction, ReviewStatus | None]] = {
    ReviewAction.ACKNOWLEDGE: ReviewStatus.ACKNOWLEDGED,
    ReviewAction.ASSIGN: None,
    ReviewAction.COMMENT: None,
    ReviewAction.RESOLVE: ReviewStatus.RESOLVED,
    ReviewAction.CLOSE: ReviewStatus.CLOSED,
    ReviewAction.REOPEN: ReviewStatus.OPEN,
}
"""The status a review leaves behind; None keeps the status it found."""

ALLOWED_FROM: Final[dict[ReviewAction, frozenset[ReviewStatus]]] = {
    ReviewAction.ACKNOWLEDGE: frozenset({ReviewStatus.OPEN}),
    ReviewAction.ASSIGN: frozenset({ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED}),
    ReviewAction.COMMENT: frozenset(ReviewStatus),
    ReviewAction.RESOLVE: frozenset({ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED}),
    ReviewAction.CLOSE: frozenset({ReviewStatus.OPEN, ReviewStatus.ACKNOWLEDGED}),
    ReviewAction.REOPEN: frozenset({ReviewStatus.RESOLVED, ReviewStatus.CLOSED}),
}
"""The statuses each action may start from: the workflow's transitions."""


class ReviewTransitionError(ValueError):
    """A review that the workflow does not allow from the finding's current status."""


def check_transition(status: ReviewStatus, action: ReviewAction) -> ReviewStatus:
    """The status after ``action``, from ``status``.

    Raises:
        ReviewTransitionError: the action is not allowed from this status (e.g. resolve a closed
            finding: reopen it first).
    """
    if status not in ALLOWED_FROM[action]:
        raise ReviewTransitionError(f"cannot {action.value} a finding that is {status.value}")
    return STATUS_AFTER[action] or status


class FindingReviewed(BaseModel):
    """One review action on a finding, by a named person in a named role, at a UTC time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_type: Literal["FindingReviewed"] = "FindingReviewed"
    schema_version: Literal[1] = 1
    review_id: uuid.UUID = Field(description="Unique id of this review (random: a person's act, not a decision)")
    study_id: str
    site_id: str = Field(description="The finding's site")
    participant_id: str = Field(description="The finding's participant; also the record key")
    finding_id: uuid.UUID = Field(description="deviation_id or alert_id of the finding reviewed")
    action: ReviewAction
    actor: Name = Field(description="The user name of the reviewer")
    role: Literal["monitor", "data-manager", "site"] = Field(description="The reviewer's role when acting")
    reviewed_at: AwareDatetime = Field(description="When the action was taken, in UTC")
    comment: ReviewText | None = None
    reason: ReviewText | None = Field(default=None, description="Required to resolve or close")
    assignee: Name | None = Field(default=None, description="Required to assign")

    @field_validator("reviewed_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        # ICH E6(R3) asks audit trails for unambiguous time: one zone for every review.
        if value.utcoffset() != dt.timedelta(0):
            raise ValueError("must be in UTC (offset +00:00)")
        return value

    @model_validator(mode="after")
    def _required_text(self) -> Self:
        if self.action in NEEDS_REASON and not (self.reason and self.reason.strip()):
            raise ValueError(f"a reason is required to {self.action.value}")
        if self.action is ReviewAction.ASSIGN and not self.assignee:
            raise ValueError("an assignee is required to assign")
        if self.action is ReviewAction.COMMENT and not (self.comment and self.comment.strip()):
            raise ValueError("a comment is required to comment")
        return self
