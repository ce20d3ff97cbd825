"""A review applies only if its actor held the role (and site) it claims when they acted, as the
access log tells: what a stale dashboard, a removed user's leftover session or a forged record
would try, each refused — kept in the history, marked not applied."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from contracts import FindingReviewed
from services.dashboard.access import authority_history, check_actor_authority
from services.dashboard.roles import ReviewAuthorityError
from services.dashboard.store import ReadModel, Record
from tests.unit.test_access_read_model import HISTORY, T0, TOPICS, _store
from tests.unit.test_read_model import _finding, _review

GZ01, GZ02 = _finding(1), _finding(2)  # odd n: site GZ-01, even n: GZ-02


def _at(minutes: float, finding: dict[str, Any], action: str, role: str, **extra: Any) -> dict[str, Any]:
    when = (T0 + dt.timedelta(minutes=minutes)).isoformat()
    return _review(finding["deviation_id"], action, role=role, site_id=finding["site_id"], reviewed_at=when) | extra


# dana: monitor from 0, data-manager from 10, disabled 20-30, removed at 40, added again at 50 as a
# site user of GZ-02 (see HISTORY).
CASES = [
    (_at(-5, GZ01, "acknowledge", "monitor"), "'dana' was not a user at"),
    (_at(5, GZ01, "acknowledge", "monitor"), None),
    (_at(5, GZ01, "resolve", "data-manager", reason="done"), "'dana' was 'monitor', not 'data-manager'"),
    (_at(15, GZ01, "resolve", "data-manager", reason="done"), None),
    (_at(25, GZ01, "acknowledge", "data-manager"), "'dana' was disabled at"),
    (_at(35, GZ01, "acknowledge", "data-manager"), None),
    (_at(45, GZ01, "acknowledge", "data-manager"), "'dana' was not a user at"),
    (_at(55, GZ02, "comment", "site", comment="seen"), None),
    (_at(55, GZ01, "comment", "site", comment="seen"), "'dana' was a user of site 'GZ-02', not 'GZ-01'"),
    (_at(55, GZ01, "acknowledge", "data-manager", actor="legacy"), None),  # never in the access log
]


@pytest.mark.parametrize(("review", "refused"), CASES)
def test_the_actors_authority_when_they_acted(tmp_path: Path, review: dict[str, Any], refused: str | None) -> None:
    with _store(tmp_path, HISTORY).reader() as db:
        history = authority_history(db, review["actor"])
    parsed = FindingReviewed.model_validate(review)
    if refused is None:
        check_actor_authority(parsed, history)
    else:
        with pytest.raises(ReviewAuthorityError, match=refused):
            check_actor_authority(parsed, history)


def _status(store: ReadModel, finding: dict[str, Any]) -> tuple[str, list[str | None]]:
    with store.reader() as db:
        status = db.execute("SELECT status FROM findings WHERE finding_id=?", (finding["deviation_id"],)).fetchone()
        outcomes = db.execute(
            "SELECT outcome FROM reviews WHERE finding_id=? ORDER BY position", (finding["deviation_id"],)
        ).fetchall()
    return status["status"], [row["outcome"] for row in outcomes]


def _records(topic: str, start: int, values: list[Any]) -> list[Record]:
    return [Record(topic, 0, start + n, 0, json.dumps(v).encode()) for n, v in enumerate(values)]


def test_a_removed_users_review_changes_nothing_and_the_history_says_why(tmp_path: Path) -> None:
    store = _store(tmp_path, HISTORY)
    store.apply(_records(TOPICS.deviations, 0, [GZ01]))
    store.apply(_records(TOPICS.finding_reviews, 0, [_at(45, GZ01, "close", "data-manager", reason="not one")]))
    status, (outcome,) = _status(store, GZ01)
    assert status == "open"
    assert outcome is not None
    assert outcome.startswith("not authorized: 'dana' was not a user at")


def test_a_review_read_before_its_actors_access_log_is_judged_again_when_that_arrives(tmp_path: Path) -> None:
    store = ReadModel(tmp_path / "read-model.sqlite3", TOPICS)
    store.apply(_records(TOPICS.deviations, 0, [GZ01]))
    store.apply(_records(TOPICS.finding_reviews, 0, [_at(25, GZ01, "acknowledge", "data-manager")]))
    assert _status(store, GZ01) == ("acknowledged", [None])  # nothing known of dana yet
    access = [Record(TOPICS.access_log, 0, n, 0, c.model_dump_json().encode()) for n, c in enumerate(HISTORY)]
    store.apply(access)
    status, (outcome,) = _status(store, GZ01)
    assert status == "open"
    assert outcome is not None
    assert "'dana' was disabled at" in outcome
