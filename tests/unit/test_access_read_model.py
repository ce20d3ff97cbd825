"""The access log in the dashboard's read model: folded in log order, shown on the operations page,
and each user's authority at an instant (what a review is checked against)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from contracts import AccessAction, AccessChanged
from events import Topics
from services.dashboard.access import Authority, authority_at, authority_history, recent_changes
from services.dashboard.store import ReadModel, Record
from tests.unit.test_dashboard_app import _client, app  # noqa: F401 - fixture

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
TOPICS = Topics("NCT06904729", "unit")


def _change(action: AccessAction, minutes: int, subject: str = "dana", **fields: Any) -> AccessChanged:
    user = {"generation": "g1", "role": "monitor", "site": None, "enabled": True}
    kind = "source" if action.value.startswith("source-") else "user"
    base = user if kind == "user" else {"site": "GZ-01", "enabled": True}
    return AccessChanged(
        change_id=uuid.uuid4(), study_id="NCT06904729", action=action, operator="ops", via="cli",
        subject_kind=kind, subject=subject, changed_at=T0 + dt.timedelta(minutes=minutes), **(base | fields),
    )  # fmt: skip


HISTORY = [
    _change(AccessAction.USER_ADDED, 0),
    _change(AccessAction.USER_ROLE_CHANGED, 10, role="data-manager"),
    _change(AccessAction.USER_DISABLED, 20, role="data-manager", enabled=False),
    _change(AccessAction.USER_ENABLED, 30, role="data-manager"),
    _change(AccessAction.USER_REMOVED, 40, role="data-manager", enabled=False),
    _change(AccessAction.USER_ADDED, 50, generation="g2", role="site", site="GZ-02"),
    _change(AccessAction.SOURCE_KEY_ROTATED, 55, subject="lis.gz01"),
]


def _store(tmp_path: Path, changes: list[AccessChanged]) -> ReadModel:
    store = ReadModel(tmp_path / "read-model.sqlite3", TOPICS)
    records = [Record(TOPICS.access_log, 0, n, 0, c.model_dump_json().encode()) for n, c in enumerate(changes)]
    applied = store.apply([*records, Record(TOPICS.access_log, 0, len(records), 0, b'{"event_type": "forged"}')])
    assert applied.access_changes == len(changes)
    return store


def test_a_users_authority_at_each_instant(tmp_path: Path) -> None:
    store = _store(tmp_path, HISTORY)
    with store.reader() as db:
        history = authority_history(db, "dana")

    def at(minutes: float) -> tuple[str, str | None, bool] | None:
        return authority_at(history, T0 + dt.timedelta(minutes=minutes))

    assert at(-1) is None  # not added yet
    assert at(0) == ("monitor", None, True)
    assert at(9.9) == ("monitor", None, True)
    assert at(10) == ("data-manager", None, True)
    assert at(25) == ("data-manager", None, False)
    assert at(35) == ("data-manager", None, True)
    assert at(45) is None  # removed
    assert at(50) == ("site", "GZ-02", True)  # added again: another generation, another role


def test_authority_at_is_pure_and_takes_the_last_state_begun_by_then() -> None:
    history = [Authority(T0, "monitor", None, True), Authority(T0, "auditor", None, True)]
    assert authority_at(history, T0) == ("auditor", None, True)
    assert authority_at([], T0) is None


def test_the_fold_is_idempotent_and_skips_what_breaks_the_contract(tmp_path: Path) -> None:
    store = _store(tmp_path, HISTORY)
    again = store.apply([Record(TOPICS.access_log, 0, 0, 0, HISTORY[0].model_dump_json().encode())])
    assert again.skipped == 1
    with store.reader() as db:
        rows = recent_changes(db)
    assert len(rows) == len(HISTORY)
    assert rows[0]["action"] == "source-key-rotated"


def test_the_operations_page_shows_the_access_log(app: Any) -> None:  # noqa: F811
    topics = app.state.settings.kafka.topics
    changes = [_change(AccessAction.USER_DISABLED, 0, subject="mona", enabled=False)]
    changes.append(_change(AccessAction.TOKEN_REVOKED, 1, subject="mona", token_id="0123456789ab"))
    app.state.store.apply(
        [Record(topics.access_log, 0, n, 0, c.model_dump_json().encode()) for n, c in enumerate(changes)]
    )
    page = _client(app, "auditor").get("/operations")
    assert page.status_code == 200
    table = page.text.split('data-testid="access-log"')[1]
    assert "user-disabled" in table
    assert "token-revoked" in table
    assert "0123456789ab" in table
    assert "ops" in table
