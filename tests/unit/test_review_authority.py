"""The read model re-checks each review's authority when it folds it: a review that reached the
topic without the dashboard (forged, or from a buggy producer) changes no status unless the
permission table allows what it claims. Attacks as a producer on finding-reviews would make them."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from contracts import FindingReviewed, ReviewAction
from services.dashboard import queries
from services.dashboard.roles import GRANTS, ReviewAuthorityError, Role, check_review_authority
from services.dashboard.store import ReadModel
from tests.unit.test_read_model import TOPICS, _finding, _record, _review

FINDING_SITE = "GZ-01"

EXTRA: dict[ReviewAction, dict[str, str]] = {
    ReviewAction.RESOLVE: {"reason": "re-consented"},
    ReviewAction.CLOSE: {"reason": "not a deviation"},
    ReviewAction.ASSIGN: {"assignee": "sam"},
    ReviewAction.COMMENT: {"comment": "looked at it"},
}


def review(role: Role, action: ReviewAction, site: str = FINDING_SITE) -> FindingReviewed:
    """A review claiming ``role``. The contract admits only the reviewing roles; the others are
    built unvalidated, as a fold that met one (after a contract change) would see it."""
    body: dict[str, Any] = _review(str(uuid.UUID(int=1)), action.value, site_id=site) | EXTRA.get(action, {})
    valid = FindingReviewed.model_validate(body | {"role": "monitor"})
    return valid.model_copy(update={"role": role.value})


ROLE_ACTIONS = [(role, action) for role in Role for action in ReviewAction]


@pytest.mark.parametrize(("role", "action"), ROLE_ACTIONS, ids=[f"{r.value}-{a.value}" for r, a in ROLE_ACTIONS])
def test_every_role_and_action_on_the_findings_site_is_allowed_exactly_as_the_table_says(
    role: Role, action: ReviewAction
) -> None:
    if action.value in GRANTS[role].review:
        check_review_authority(review(role, action), FINDING_SITE)
    else:
        with pytest.raises(ReviewAuthorityError, match=f"role '{role.value}' may not {action.value} findings"):
            check_review_authority(review(role, action), FINDING_SITE)


def test_the_table_is_what_the_readme_says() -> None:
    allowed = {role.value: sorted(a.value for a in ReviewAction if a.value in GRANTS[role].review) for role in Role}
    assert allowed == {
        "monitor": ["acknowledge", "comment"],
        "data-manager": ["acknowledge", "assign", "close", "comment", "reopen", "resolve"],
        "site": ["comment"],
        "auditor": [],
        "admin": [],
    }


ALLOWED = [(role, action) for role, action in ROLE_ACTIONS if action.value in GRANTS[role].review]


@pytest.mark.parametrize(("role", "action"), ALLOWED, ids=[f"{r.value}-{a.value}" for r, a in ALLOWED])
def test_an_allowed_action_that_names_another_site_than_the_findings_is_refused(
    role: Role, action: ReviewAction
) -> None:
    with pytest.raises(ReviewAuthorityError, match="names site 'GZ-02', the finding is of site 'GZ-01'"):
        check_review_authority(review(role, action, site="GZ-02"), FINDING_SITE)


def test_a_role_outside_the_table_is_refused() -> None:
    forged = review(Role.MONITOR, ReviewAction.COMMENT).model_copy(update={"role": "sponsor"})
    with pytest.raises(ReviewAuthorityError, match="'sponsor' is not a dashboard role"):
        check_review_authority(forged, FINDING_SITE)


@pytest.fixture
def model(tmp_path: Path) -> ReadModel:
    return ReadModel(tmp_path / "read-model.sqlite3", TOPICS)


def _folded(model: ReadModel, finding_id: str) -> tuple[str, list[str | None]]:
    with model.reader() as db:
        found = queries.finding(db, finding_id)
    assert found is not None
    return str(found["status"]), [r["outcome"] for r in found["reviews"]]


def test_a_site_review_that_closes_a_finding_is_kept_but_not_applied(model: ReadModel) -> None:
    finding_id = str(uuid.UUID(int=1))  # _finding(1) is of site GZ-01
    forged = _review(finding_id, "close", role="site", actor="site-gz01", reason="nothing to see")
    model.apply([_record(TOPICS.deviations, 0, _finding(1)), _record(TOPICS.finding_reviews, 0, forged)])
    assert _folded(model, finding_id) == ("open", ["not authorized: role 'site' may not close findings"])


def test_a_review_naming_another_site_and_a_monitor_resolving_are_not_applied_and_later_reviews_are(
    model: ReadModel,
) -> None:
    finding_id = str(uuid.UUID(int=1))
    model.apply(
        [
            _record(TOPICS.deviations, 0, _finding(1)),
            _record(
                TOPICS.finding_reviews, 0, _review(finding_id, "comment", role="site", site_id="GZ-02", comment="x")
            ),
            _record(TOPICS.finding_reviews, 1, _review(finding_id, "resolve", role="monitor", reason="done")),
            _record(TOPICS.finding_reviews, 2, _review(finding_id, "acknowledge", role="monitor")),
        ]
    )
    assert _folded(model, finding_id) == (
        "acknowledged",
        [
            "not authorized: the review names site 'GZ-02', the finding is of site 'GZ-01'",
            "not authorized: role 'monitor' may not resolve findings",
            None,
        ],
    )


def test_a_forged_review_read_before_its_finding_is_judged_when_the_finding_arrives(model: ReadModel) -> None:
    finding_id = str(uuid.UUID(int=1))
    model.apply([_record(TOPICS.finding_reviews, 0, _review(finding_id, "resolve", role="site", reason="done"))])
    model.apply([_record(TOPICS.deviations, 0, _finding(1))])
    assert _folded(model, finding_id) == ("open", ["not authorized: role 'site' may not resolve findings"])
