"""The dashboard app in process, without Kafka: login, CSRF, roles, site scope, escaping, API.

The app's lifespan (which starts the FastStream broker) is not run: the read model is filled
directly, and publishing a review feeds it back into the read model as the consumer would.
The browser tests (tests/e2e) prove the same against real processes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from contracts import FindingReviewed
from services.dashboard.app import create_app
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import ReadModel, Record
from services.dashboard.throttle import LoginThrottle
from services.dashboard.users import UserStore
from services.kafka import KafkaSettings
from tests.unit.test_read_model import _finding

PASSWORD = "correct horse battery"
HOSTILE = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example")'
ROLES = {"monitor": None, "data-manager": None, "site": "GZ-02", "auditor": None, "admin": None}


class FakeConsumer:
    async def lag(self) -> dict[str, int]:
        return {}


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = DashboardSettings(KafkaSettings("127.0.0.1:1", "NCT06904729", "unit"), tmp_path, "127.0.0.1", 0)
    users = UserStore(tmp_path / "users.sqlite3", hasher=PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    for name, site in ROLES.items():
        users.add(name, name, PASSWORD, site)
    app = create_app(settings, users)
    store = ReadModel(settings.read_model_path, settings.kafka.topics)
    topics = settings.kafka.topics
    records = [Record(topics.deviations, 0, n, 1_767_225_600_000, json.dumps(_finding(n)).encode()) for n in range(12)]
    hostile = _finding(99, site_id=HOSTILE, participant_id="P-X", evidence={"note": HOSTILE}, term=FORMULA + HOSTILE)
    records.append(Record(topics.deviations, 0, 12, 1_767_225_600_000, json.dumps(hostile).encode()))
    store.apply(records)
    offsets = iter(range(10**6))

    async def publish(review: FindingReviewed) -> None:
        record = Record(topics.finding_reviews, 0, next(offsets), 0, review.model_dump_json().encode())
        app.state.live.applied(store.apply([record]))

    app.state.store, app.state.publish, app.state.consumer = store, publish, FakeConsumer()
    app.state.access_events = []
    app.state.publish_access = app.state.access_events.append  # Kafka took it
    app.state.settings = DashboardSettings(settings.kafka, tmp_path, "127.0.0.1", 0, review_wait_seconds=2)
    return app


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


def _client(app: Any, user: str | None = None) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    if user is not None:
        answer = client.post(
            "/login",
            data={"name": user, "password": PASSWORD, "csrf": _csrf(client.get("/login").text), "next": "/findings"},
        )
        assert answer.status_code == 303, answer.text
    return client


@pytest.fixture
def token(app: Any) -> Any:
    return lambda name: app.state.users.issue_token(name)


OPEN_PAGES = [
    "/findings",
    "/findings?rule=SEQ-02",
    "/overview",
    "/operations",
    "/participants/P-001",
    f"/findings/{'0' * 8}-0000-0000-0000-{'0' * 11}1",
    "/admin/users",
]


@pytest.mark.parametrize("path", OPEN_PAGES)
def test_pages_need_a_login(app: Any, path: str) -> None:
    answer = _client(app).get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(
    "path",
    [
        "/api/findings",
        "/api/summary",
        "/api/findings.csv",
        "/api/openapi.json",
        "/api/participants/P-001/timeline",
        "/api/live",
    ],
)
def test_the_api_needs_a_login_or_a_token(app: Any, path: str) -> None:
    assert _client(app).get(path).status_code == 401
    assert _client(app).get(path, headers={"Authorization": "Bearer nope"}).status_code == 401


@pytest.mark.parametrize("path", ["/login", "/health", "/metrics"])
def test_only_login_health_and_metrics_are_open(app: Any, path: str) -> None:
    assert _client(app).get(path).status_code in (200, 503)  # /health says 503 while the broker is not started


def test_a_login_form_without_its_csrf_token_is_refused(app: Any) -> None:
    answer = _client(app).post("/login", data={"name": "monitor", "password": PASSWORD})
    assert answer.status_code == 403


def test_failed_logins_are_throttled(app: Any) -> None:
    now = [1000.0]
    app.state.login_throttle = LoginThrottle(clock=lambda: now[0])  # time stands still until moved
    client = _client(app)
    csrf = _csrf(client.get("/login").text)
    codes = [
        client.post("/login", data={"name": "monitor", "password": "wrong", "csrf": csrf}).status_code for _ in range(6)
    ]
    assert codes == [401] * 5 + [429]
    refused = client.post("/login", data={"name": "monitor", "password": PASSWORD, "csrf": csrf})
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    now[0] += int(refused.headers["retry-after"])
    assert client.post("/login", data={"name": "monitor", "password": PASSWORD, "csrf": csrf}).status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
def test_a_login_never_redirects_off_site(app: Any, target: str) -> None:
    client = _client(app)
    answer = client.post(
        "/login",
        data={"name": "monitor", "password": PASSWORD, "csrf": _csrf(client.get("/login").text), "next": target},
    )
    assert answer.headers["location"] == "/"


def test_the_session_cookie_is_httponly_and_samesite(app: Any) -> None:
    client = TestClient(app, follow_redirects=False)
    cookie = client.get("/login").headers["set-cookie"]
    assert "httponly" in cookie.lower()
    assert "samesite=strict" in cookie.lower()


def test_logout_ends_the_session(app: Any) -> None:
    client = _client(app, "monitor")
    client.post("/logout", data={"csrf": _csrf(client.get("/findings").text)})
    assert client.get("/findings").status_code == 303


def _first(app: Any, token: Any, **filters: str) -> dict[str, Any]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    items = _client(app).get(f"/api/findings?{query}", headers={"Authorization": f"Bearer {token('admin')}"})
    return dict(items.json()["items"][0])


def _review(app: Any, token: Any, user: str, finding_id: str, **body: Any) -> Any:
    return _client(app).post(
        f"/api/findings/{finding_id}/reviews", json=body, headers={"Authorization": f"Bearer {token(user)}"}
    )


@pytest.mark.parametrize(
    ("user", "action", "extra", "status"),
    [
        ("monitor", "acknowledge", {}, 201),
        ("monitor", "comment", {"comment": "query sent"}, 201),
        ("monitor", "resolve", {"reason": "data_corrected"}, 403),
        ("monitor", "assign", {"assignee": "dana"}, 403),
        ("data-manager", "resolve", {"reason": "data_corrected"}, 201),
        ("data-manager", "close", {"reason": "other", "reason_other": "lab belongs to another participant"}, 201),
        ("data-manager", "resolve", {}, 422),
        ("data-manager", "reopen", {}, 409),
        ("data-manager", "approve", {}, 422),
        ("auditor", "acknowledge", {}, 403),
        ("auditor", "comment", {"comment": "x"}, 403),
        ("admin", "acknowledge", {}, 403),
        ("site", "comment", {"comment": "on it"}, 201),
        ("site", "acknowledge", {}, 403),
    ],
)
def test_who_may_take_which_review_action(
    app: Any, token: Any, user: str, action: str, extra: dict[str, str], status: int
) -> None:
    finding = _first(app, token, site="GZ-02")
    answer = _review(app, token, user, finding["finding_id"], action=action, **extra)
    assert answer.status_code == status, answer.text
    if status == 201:
        assert answer.json()["actor"] == user
        assert answer.json()["reviewed_at"].endswith("Z")


def test_a_site_user_cannot_review_or_read_another_site(app: Any, token: Any) -> None:
    other = _first(app, token, site="GZ-01")
    assert _review(app, token, "site", other["finding_id"], action="comment", comment="x").status_code == 404
    site = {"Authorization": f"Bearer {token('site')}"}
    client = _client(app)
    assert client.get(f"/api/findings/{other['finding_id']}", headers=site).status_code == 404
    listed = client.get("/api/findings?site=GZ-01", headers=site).json()
    assert listed["total"] == 0
    assert {item["site_id"] for item in client.get("/api/findings", headers=site).json()["items"]} == {"GZ-02"}


def test_the_workflow_and_history_through_the_pages(app: Any, token: Any) -> None:
    finding = _first(app, token, site="GZ-01")
    client = _client(app, "data-manager")
    path = f"/findings/{finding['finding_id']}"
    csrf = _csrf(client.get(path).text)
    assert client.post(path + "/reviews", data={"action": "acknowledge"}).status_code == 403  # no CSRF token
    for action, extra in (
        ("acknowledge", {}),
        ("assign", {"assignee": "monitor"}),
        ("resolve", {"reason": "data_corrected"}),
        ("reopen", {}),
        ("close", {"reason": "entry_error"}),
    ):
        answer = client.post(path + "/reviews", data={"csrf": csrf, "action": action, **extra})
        assert answer.status_code == 303, answer.text
    detail = client.get(f"/api{path}").json()
    assert (detail["status"], detail["assignee"]) == ("closed", "monitor")
    assert [r["action"] for r in detail["reviews"]] == ["acknowledge", "assign", "resolve", "reopen", "close"]
    refused = client.post(path + "/reviews", data={"csrf": csrf, "action": "resolve", "reason": "data_corrected"})
    assert refused.status_code == 409
    assert "cannot resolve a finding that is closed" in refused.text


def test_a_cookie_api_call_that_changes_state_needs_the_csrf_header(app: Any, token: Any) -> None:
    finding = _first(app, token)
    client = _client(app, "data-manager")
    path = f"/api/findings/{finding['finding_id']}/reviews"
    assert client.post(path, json={"action": "acknowledge"}).status_code == 403
    csrf = _csrf(client.get("/findings").text)
    assert client.post(path, json={"action": "acknowledge"}, headers={"X-CSRF-Token": csrf}).status_code == 201


@pytest.mark.parametrize("path", ["/findings?participant=P-X", "/participants/P-X", "/overview"])
def test_hostile_text_is_escaped_and_the_policy_forbids_inline_script(app: Any, path: str) -> None:
    answer = _client(app, "data-manager").get(path)
    assert answer.status_code == 200
    assert HOSTILE not in answer.text
    if path != "/overview":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]


def test_the_detail_page_escapes_evidence(app: Any, token: Any) -> None:
    finding = _first(app, token, participant="P-X")
    page = _client(app, "auditor").get(f"/findings/{finding['finding_id']}").text
    assert HOSTILE not in page
    assert page.count("&lt;script&gt;") >= 3


def test_csv_download_follows_the_filter_and_defuses_formulas(app: Any, tmp_path: Path) -> None:
    client = _client(app, "monitor")
    lines = client.get("/api/findings.csv?rule=SEQ-02").text.splitlines()
    assert lines[0].startswith("finding_id,participant_id,site_id,rule_id")
    assert len(lines) == 1 + 5
    assert all(",SEQ-02," in line for line in lines[1:])
    hostile = next(line for line in lines if "P-X" in line)
    assert ",\"'=HYPERLINK(" in hostile, "a cell that starts like a formula is quoted as text"


@pytest.mark.parametrize(
    ("query", "field"), [("sort=nope", "sort="), ("limit=9999999", "limit="), ("occurred_from=today", "occurred_from=")]
)
def test_a_bad_query_parameter_is_a_422_that_names_it(app: Any, query: str, field: str) -> None:
    answer = _client(app, "monitor").get(f"/api/findings?{query}")
    assert answer.status_code == 422
    assert field in answer.json()["detail"]


def test_an_admin_adds_users_and_others_may_not(app: Any) -> None:
    admin = _client(app, "admin")
    csrf = _csrf(admin.get("/admin/users").text)
    added = admin.post("/admin/users", data={"csrf": csrf, "name": "nina", "role": "monitor"})
    assert added.status_code == 200
    # No password chosen by the admin: a one-time link for nina to choose hers, shown once.
    link = re.search(r'data-testid="set-password-link">[^<]*/set-password\?token=([^<]+)<', added.text)
    assert link is not None
    assert app.state.users.get("nina") is not None
    assert app.state.users.authenticate("nina", PASSWORD) is None
    (event,) = app.state.access_events
    assert (event.action, event.operator, event.via, event.subject) == ("user-added", "admin", "dashboard", "nina")
    assert link.group(1) not in event.model_dump_json()
    monitor = _client(app, "monitor")
    assert monitor.get("/admin/users").status_code == 403
