"""The review workflow of contract v1: FindingReviewed and its status transitions (pure)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from contracts import FindingReviewed, ReviewAction, ReviewStatus, ReviewTransitionError, check_transition

A, S = ReviewAction, ReviewStatus

TRANSITIONS = [
    (S.OPEN, A.ACKNOWLEDGE, S.ACKNOWLEDGED),
    (S.OPEN, A.ASSIGN, S.OPEN),
    (S.ACKNOWLEDGED, A.ASSIGN, S.ACKNOWLEDGED),
    (S.OPEN, A.COMMENT, S.OPEN),
    (S.RESOLVED, A.COMMENT, S.RESOLVED),
    (S.CLOSED, A.COMMENT, S.CLOSED),
    (S.OPEN, A.RESOLVE, S.RESOLVED),
    (S.ACKNOWLEDGED, A.RESOLVE, S.RESOLVED),
    (S.OPEN, A.CLOSE, S.CLOSED),
    (S.ACKNOWLEDGED, A.CLOSE, S.CLOSED),
    (S.RESOLVED, A.REOPEN, S.OPEN),
    (S.CLOSED, A.REOPEN, S.OPEN),
]

REFUSED = [
    (S.ACKNOWLEDGED, A.ACKNOWLEDGE),
    (S.RESOLVED, A.ACKNOWLEDGE),
    (S.RESOLVED, A.RESOLVE),
    (S.CLOSED, A.RESOLVE),
    (S.RESOLVED, A.CLOSE),
    (S.OPEN, A.REOPEN),
    (S.ACKNOWLEDGED, A.REOPEN),
    (S.CLOSED, A.ASSIGN),
]


@pytest.mark.parametrize(("before", "action", "after"), TRANSITIONS)
def test_allowed_transition(before: ReviewStatus, action: ReviewAction, after: ReviewStatus) -> None:
    assert check_transition(before, action) is after


@pytest.mark.parametrize(("before", "action"), REFUSED)
def test_refused_transition_names_action_and_status(before: ReviewStatus, action: ReviewAction) -> None:
    with pytest.raises(ReviewTransitionError, match=f"cannot {action.value} a finding that is {before.value}"):
        check_transition(before, action)


def _review(**changes: Any) -> dict[str, Any]:
    review: dict[str, Any] = {
        "review_id": str(uuid.uuid4()),
        "study_id": "NCT06904729",
        "site_id": "GZ-01",
        "participant_id": "P-0001",
        "finding_id": str(uuid.uuid4()),
        "action": "acknowledge",
        "actor": "monica",
        "role": "monitor",
        "reviewed_at": "2026-11-25T10:00:00+00:00",
    }
    return review | changes


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"action": "resolve"}, "a reason is required to resolve"),
        ({"action": "close", "reason": "   "}, "a reason is required to close"),
        ({"action": "assign"}, "an assignee is required to assign"),
        ({"action": "comment"}, "a comment is required to comment"),
        ({"reviewed_at": "2026-11-25T18:00:00+08:00"}, "must be in UTC"),
        ({"reviewed_at": "2026-11-25T10:00:00"}, "timezone"),
        ({"role": "auditor"}, "role"),
        ({"actor": "<script>"}, "actor"),
        ({"comment": "x" * 2001}, "comment"),
        ({"action": "approve"}, "action"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_review_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        FindingReviewed.model_validate(_review(**changes))


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"action": "resolve", "reason": "consent re-signed, IRB informed"},
        {"action": "close", "reason": "lab entered against the wrong participant"},
        {"action": "assign", "assignee": "dana"},
        {"action": "comment", "comment": "query sent to site"},
        {"action": "reopen", "role": "data-manager"},
    ],
)
def test_valid_review_round_trips(changes: dict[str, Any]) -> None:
    review = FindingReviewed.model_validate(_review(**changes))
    assert FindingReviewed.model_validate_json(review.model_dump_json()) == review
    assert review.reviewed_at.utcoffset() == dt.timedelta(0)
