"""Bulk review through the API and the findings page, as attacks and as work: the app in process,
its batch publisher replaced by one that applies a whole batch to the read model at once (or
fails, as Kafka may). The real-Kafka transaction is tests/integration/test_bulk_review_live.py."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from contracts import FindingReviewed
from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel, Record
from services.dashboard.users import UserStore
from services.kafka import KafkaSettings
from tests.unit.test_read_model import _alert, _finding

PASSWORD = "correct horse battery"
USERS = {"monitor": None, "data-manager": None, "site": "GZ-02", "auditor": None}
ALERTS = 120  # ids 0..119: even ones of site GZ-02, odd ones of GZ-01
NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)
EXPEDITED = "Reported to the sponsor and ethics committee within the expedited timeline"  # reported_expedited


def fid(n: int) -> str:
    return str(uuid.UUID(int=n))


class FakeConsumer:
    async def lag(self) -> dict[str, int]:
        return {}


@pytest.fixture
def app(tmp_path: Path) -> Any:
    return make_app(tmp_path)


def make_app(tmp_path: Path) -> Any:
    """The app with 120 RELAPSE alerts and 5 deviations, a batch publisher that applies each batch
    at once (``app.state.batches`` keeps them; ``app.state.kafka_down`` makes it fail), and "now"
    fixed at ``NOW``."""
    settings = DashboardSettings(
        KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0, review_wait_seconds=2
    )
    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, site in USERS.items():
        users.add(name, name, PASSWORD, site)
    app = create_app(settings, users)
    store = ReadModel(settings.read_model_path, settings.kafka.topics)
    topics = settings.kafka.topics
    findings = [_alert(n) | {"rule_id": "RELAPSE"} for n in range(ALERTS)] + [_finding(500 + n) for n in range(5)]
    store.apply([Record(topics.deviations, 0, n, 0, json.dumps(f).encode()) for n, f in enumerate(findings)])
    offsets = iter(range(10**6))
    app.state.batches = []
    app.state.kafka_down = False

    async def publish_batch(reviews: Sequence[FindingReviewed]) -> None:
        if app.state.kafka_down:
            raise RuntimeError("the transaction was aborted")
        app.state.batches.append(list(reviews))
        records = [Record(topics.finding_reviews, 0, next(offsets), 0, r.model_dump_json().encode()) for r in reviews]
        app.state.live.applied(store.apply(records))  # all of the batch at once, as read_committed sees it

    app.state.store, app.state.publish_batch, app.state.consumer = store, publish_batch, FakeConsumer()
    app.state.now = lambda: NOW
    return app


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _client(app: Any, user: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    answer = client.post(
        "/login",
        data={"name": user, "password": PASSWORD, "csrf": _csrf(client.get("/login").text), "next": "/findings"},
    )
    assert answer.status_code == 303, answer.text
    return client


def _bulk(app: Any, user: str, **body: Any) -> Any:
    token = app.state.users.issue_token(user)
    return TestClient(app).post("/api/bulk-reviews", json=body, headers={"Authorization": f"Bearer {token}"})


def _published(app: Any) -> list[FindingReviewed]:
    return [review for batch in app.state.batches for review in batch]


def _statuses(app: Any, ids: list[str]) -> dict[str, str]:
    with app.state.store.reader() as db:
        marks = ", ".join("?" * len(ids))
        rows = db.execute(f"SELECT finding_id, status FROM findings WHERE finding_id IN ({marks})", ids)
        return {row[0]: row[1] for row in rows.fetchall()}


def test_a_data_managers_bulk_resolve_of_100_findings_is_exactly_100_events_in_one_batch(app: Any) -> None:
    ids = [fid(n) for n in range(100)]
    answer = _bulk(app, "data-manager", action="resolve", reason="reported_expedited", finding_ids=ids)
    assert answer.status_code == 201, answer.text
    assert answer.json()["reviewed"] == 100
    assert [len(batch) for batch in app.state.batches] == [100]
    published = _published(app)
    assert sorted(str(r.finding_id) for r in published) == sorted(ids)
    assert len({r.review_id for r in published}) == 100
    assert {(r.action.value, r.reason, r.actor, r.role) for r in published} == {
        ("resolve", EXPEDITED, "data-manager", "data-manager")
    }
    assert set(_statuses(app, ids).values()) == {"resolved"}
    with app.state.store.reader() as db:
        assert db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 100


def test_a_monitors_bulk_acknowledge_of_100_findings_is_exactly_100_events(app: Any) -> None:
    ids = [fid(n) for n in range(100)]
    answer = _bulk(app, "monitor", action="acknowledge", comment="seen", finding_ids=ids)
    assert answer.status_code == 201, answer.text
    assert len(_published(app)) == 100
    assert set(_statuses(app, ids).values()) == {"acknowledged"}


@pytest.mark.parametrize(("user", "action"), [("monitor", "resolve"), ("auditor", "comment"), ("site", "close")])
def test_a_role_that_may_not_take_the_action_is_refused_for_the_whole_batch(app: Any, user: str, action: str) -> None:
    reason = {"reason": "done"} if action in ("resolve", "close") else {}
    answer = _bulk(app, user, action=action, finding_ids=[fid(0), fid(2)], **reason)
    assert answer.status_code == 403
    assert f"may not {action}" in answer.json()["detail"]
    assert app.state.batches == []


def test_a_site_users_bulk_including_another_sites_finding_is_refused_wholly(app: Any) -> None:
    own = [fid(n) for n in range(0, 20, 2)]  # GZ-02, the site user's own
    other = fid(7)  # GZ-01
    answer = _bulk(app, "site", action="comment", comment="checked", finding_ids=[*own[:5], other, *own[5:]])
    assert answer.status_code == 403
    body = answer.json()
    assert other in body["detail"]
    assert body["findings"] == {"not found, or not of your site": [other]}
    assert app.state.batches == [], "a part of the batch was published"
    with app.state.store.reader() as db:
        assert db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


def test_a_site_user_cannot_tell_another_sites_finding_from_one_that_does_not_exist(app: Any) -> None:
    unknown = str(uuid.uuid4())
    answer = _bulk(app, "site", action="comment", comment="x", finding_ids=[fid(0), fid(1), unknown])
    assert answer.status_code == 403
    assert answer.json()["findings"] == {"not found, or not of your site": [fid(1), unknown]}


def test_all_matching_a_filter_is_only_the_site_users_own_findings(app: Any) -> None:
    answer = _bulk(app, "site", action="comment", comment="x", filter={"rule": "RELAPSE"}, expected_total=ALERTS // 2)
    assert answer.status_code == 201, answer.text
    assert {r.site_id for r in _published(app)} == {"GZ-02"}
    assert len(_published(app)) == ALERTS // 2


def test_a_filter_that_now_matches_another_number_is_refused(app: Any) -> None:
    answer = _bulk(app, "data-manager", action="acknowledge", filter={"rule": "RELAPSE"}, expected_total=ALERTS - 1)
    assert answer.status_code == 409
    assert f"now matches {ALERTS} findings, not the {ALERTS - 1} shown" in answer.json()["detail"]
    assert app.state.batches == []


def test_one_finding_the_workflow_does_not_allow_refuses_the_batch_naming_it(app: Any) -> None:
    assert _bulk(app, "data-manager", action="resolve", reason="followed_up", finding_ids=[fid(3)]).status_code == 201
    answer = _bulk(app, "data-manager", action="acknowledge", finding_ids=[fid(1), fid(3), fid(5)])
    assert answer.status_code == 409
    assert answer.json()["findings"] == {"resolved: cannot acknowledge from there": [fid(3)]}
    assert len(app.state.batches) == 1
    assert _statuses(app, [fid(1), fid(5)]) == {fid(1): "open", fid(5): "open"}


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"action": "resolve", "finding_ids": ["0"]}, "not finding ids: 0"),
        ({"action": "resolve", "reason": "x", "finding_ids": []}, "select at least one"),
        ({"action": "reopen", "finding_ids": [fid(1)]}, "one finding at a time"),
        ({"action": "comment", "reason": "x", "finding_ids": [fid(1)]}, "reason: not used to comment"),
        ({"action": "resolve", "reason": "x"}, "either finding_ids or a filter"),
        ({"action": "resolve", "reason": "x", "filter": {"rule": "RELAPSE"}}, "expected_total"),
        ({"action": "resolve", "reason": "x", "filter": {"evil": "1"}, "expected_total": 1}, "unknown filters evil"),
        ({"action": "resolve", "reason": "x", "filter": {"kind": "x"}, "expected_total": 1}, "filter: kind='x'"),
    ],
)
def test_bad_bulk_requests_say_what_is_wrong(app: Any, body: dict[str, Any], said: str) -> None:
    answer = _bulk(app, "data-manager", **body)
    assert answer.status_code == 422
    assert said in answer.json()["detail"]
    assert app.state.batches == []


def test_a_resolve_without_a_reason_is_refused(app: Any) -> None:
    answer = _bulk(app, "data-manager", action="resolve", finding_ids=[fid(1), fid(3)])
    assert answer.status_code == 422
    assert app.state.batches == []


def test_when_kafka_does_not_commit_nothing_is_recorded(app: Any) -> None:
    app.state.kafka_down = True
    answer = _bulk(app, "data-manager", action="acknowledge", finding_ids=[fid(1), fid(3)])
    assert answer.status_code == 503
    assert "nothing was recorded" in answer.json()["detail"]
    assert set(_statuses(app, [fid(1), fid(3)]).values()) == {"open"}


def test_a_cookie_api_call_needs_its_csrf_header(app: Any) -> None:
    client = _client(app, "data-manager")
    body = {"action": "acknowledge", "finding_ids": [fid(1)]}
    assert client.post("/api/bulk-reviews", json=body).status_code == 403
    csrf = _csrf(client.get("/findings").text)
    assert client.post("/api/bulk-reviews", json=body, headers={"X-CSRF-Token": csrf}).status_code == 201


def test_the_page_form_reviews_the_checked_rows(app: Any) -> None:
    client = _client(app, "data-manager")
    page = client.get("/findings?rule=RELAPSE&limit=100")
    assert page.text.count('form="bulk"') == 100
    form = {"csrf": _csrf(page.text), "action": "acknowledge", "scope": "selected", "rule": "RELAPSE"}
    answer = client.post("/findings/bulk-reviews", data=form | {"finding_id": [fid(1), fid(2)]})
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/findings?rule=RELAPSE&bulk_done=")
    assert "Recorded: acknowledge × 2" in client.get(answer.headers["location"]).text
    assert _statuses(app, [fid(1), fid(2)]) == {fid(1): "acknowledged", fid(2): "acknowledged"}


def test_the_page_form_reviews_all_matching_the_filter(app: Any) -> None:
    client = _client(app, "data-manager")
    page = client.get("/findings?rule=RELAPSE")
    assert f"all {ALERTS} matching this filter" in page.text
    form = {"csrf": _csrf(page.text), "action": "resolve", "reason": "other", "scope": "all"}
    form |= {"reason_other": "reviewed at the safety board", "rule": "RELAPSE", "expected_total": str(ALERTS)}
    answer = client.post("/findings/bulk-reviews", data=form)
    assert answer.status_code == 303
    assert len(_published(app)) == ALERTS
    assert {r.reason for r in _published(app)} == {"Other: reviewed at the safety board"}


def test_closing_safety_alerts_as_not_a_deviation_is_refused_naming_them(app: Any) -> None:
    deviations = [fid(500 + n) for n in range(2)]
    answer = _bulk(app, "data-manager", action="close", reason="duplicate", finding_ids=[*deviations, fid(4)])
    assert answer.status_code == 422
    [(problem, ids)] = answer.json()["findings"].items()
    assert problem.startswith("alert: A safety alert cannot be closed")
    assert ids == [fid(4)]
    assert app.state.batches == []


def test_a_reason_from_another_kinds_list_is_refused_naming_the_findings(app: Any) -> None:
    answer = _bulk(app, "data-manager", action="resolve", reason="data_corrected", finding_ids=[fid(500), fid(1)])
    assert answer.status_code == 422
    assert list(answer.json()["findings"].values()) == [[fid(1)]]
    assert (
        _bulk(app, "data-manager", action="close", reason="duplicate", finding_ids=[fid(500), fid(501)]).status_code
        == 201
    )


def test_the_page_form_shows_a_refusal_naming_the_findings(app: Any) -> None:
    client = _client(app, "site")
    page = client.get("/findings")
    form = {"csrf": _csrf(page.text), "action": "comment", "comment": "x", "scope": "selected"}
    answer = client.post("/findings/bulk-reviews", data=form | {"finding_id": [fid(0), fid(9)]})
    assert answer.status_code == 403
    assert fid(9) in answer.text
    assert "nothing was recorded" in answer.text
    assert app.state.batches == []


def test_the_page_form_needs_its_csrf_token(app: Any) -> None:
    client = _client(app, "data-manager")
    answer = client.post("/findings/bulk-reviews", data={"action": "acknowledge", "finding_id": [fid(1)]})
    assert answer.status_code == 403
    assert app.state.batches == []


def test_an_auditor_sees_no_bulk_controls(app: Any) -> None:
    page = _client(app, "auditor").get("/findings")
    assert 'data-testid="bulk-form"' not in page.text
    assert 'form="bulk"' not in page.text
