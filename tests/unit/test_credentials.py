"""Credentials with a lifecycle, as attacks on the dashboard in process: a session cookie replayed
after logout, a password change, disabling or a role change; a token after revocation, expiry, or
its user removed and added again; a set-password link used twice or late; an admin reviewing.
Every change is an access-log event naming operator and subject, without a secret; with the
access log away nothing changes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from contracts import AccessChanged
from services.access_log import AccessLogError
from services.dashboard.credentials import LINK_HOURS, UserError
from services.dashboard.roles import Role, User
from services.dashboard.users import UserStore
from services.dashboard.users_cli import users_revoke_token, users_role, users_state, users_tokens
from tests.access import broker_away, recording
from tests.unit.test_dashboard_app import PASSWORD, _client, _csrf, _first, _review, app  # noqa: F401 - fixture
from tests.unit.test_users import parse

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NEW_PASSWORD = "a brand new passphrase"


class Clock:
    """A clock the test moves: expiry without sleeping."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock(app: Any) -> Clock:  # noqa: F811 - the fixture imported above
    moved = Clock()
    app.state.users = UserStore(app.state.users.path, hasher=CHEAP, clock=moved)
    return moved


def _logged_in(client: TestClient) -> bool:
    answer = client.get("/findings")
    return bool(answer.status_code == 200)


def _api(app: Any, token: str) -> int:  # noqa: F811
    return int(_client(app).get("/api/summary", headers={"Authorization": f"Bearer {token}"}).status_code)


def test_a_cookie_replayed_after_logout_is_refused(app: Any) -> None:  # noqa: F811
    client = _client(app, "monitor")
    stolen = dict(client.cookies)
    assert _logged_in(client)
    assert client.post("/logout", data={"csrf": _csrf(client.get("/findings").text)}).status_code == 303
    replay = TestClient(app, follow_redirects=False, cookies=stolen)
    answer = replay.get("/findings")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login")
    assert replay.get("/api/summary").status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        lambda users, changes: users.set_password("monitor", NEW_PASSWORD, changes),
        lambda users, changes: users.set_enabled("monitor", False, changes),
        lambda users, changes: users.set_role("monitor", Role.AUDITOR, None, changes),
        lambda users, changes: users.remove("monitor", changes),
    ],
    ids=["password-changed", "disabled", "role-changed", "removed"],
)
def test_a_change_ends_the_users_sessions_at_once(app: Any, change: Any) -> None:  # noqa: F811
    client = _client(app, "monitor")
    assert _logged_in(client)
    change(app.state.users, recording([]))
    assert not _logged_in(client)
    assert client.get("/api/summary").status_code == 401


def test_a_user_removed_and_added_again_gets_none_of_the_old_cookies_or_tokens(app: Any) -> None:  # noqa: F811
    users: UserStore = app.state.users
    client = _client(app, "monitor")
    token = users.issue_token("monitor")
    users.remove("monitor", recording([]))
    users.add("monitor", Role.MONITOR, PASSWORD)  # same name, same password: another person's account
    assert not _logged_in(client)
    assert _api(app, token) == 401
    assert _logged_in(_client(app, "monitor"))  # the new account itself works


def test_a_disabled_user_cannot_log_in_or_use_a_token(app: Any) -> None:  # noqa: F811
    users: UserStore = app.state.users
    token = users.issue_token("monitor")
    users.set_enabled("monitor", False, recording([]))
    client = TestClient(app, follow_redirects=False)
    answer = client.post(
        "/login", data={"name": "monitor", "password": PASSWORD, "csrf": _csrf(client.get("/login").text)}
    )
    assert answer.status_code == 401
    assert _api(app, token) == 401
    users.set_enabled("monitor", True, recording([]))
    assert _api(app, token) == 200


def test_a_revoked_token_is_refused_at_once(app: Any, tmp_path: Path) -> None:  # noqa: F811
    users: UserStore = app.state.users
    token, other = users.issue_token("monitor"), users.issue_token("monitor")
    (first, second) = users.tokens_of("monitor")
    out = io.StringIO()
    args = parse("users", "revoke-token", first.token_id, "--data-dir", str(users.path.parent))
    assert users_revoke_token(args, stdout=out, stderr=io.StringIO(), recorder=recording([])) == 0
    assert _api(app, token) == 401
    assert _api(app, other) == 200
    args = parse("users", "tokens", "monitor", "--data-dir", str(users.path.parent))
    assert users_tokens(args, stdout=out) == 0
    listed = out.getvalue().splitlines()[1:]
    assert [line.split("\t")[0] for line in listed] == [first.token_id, second.token_id]
    assert listed[0].split("\t")[3] != "-"
    assert listed[1].split("\t")[3] == "-"
    assert token not in out.getvalue()
    assert hashlib.sha256(token.encode()).hexdigest() not in out.getvalue()
    err = io.StringIO()
    args = parse("users", "revoke-token", "0badc0ffee00", "--data-dir", str(users.path.parent))
    assert users_revoke_token(args, stdout=io.StringIO(), stderr=err, recorder=recording([])) == 1


def test_a_token_expires(app: Any, clock: Clock) -> None:  # noqa: F811
    users: UserStore = app.state.users
    token = users.issue_token("monitor", days=2)
    assert users.tokens_of("monitor")[0].expires_at == "2026-03-03T09:00:00+00:00"
    clock.now += dt.timedelta(days=2, seconds=-1)
    assert _api(app, token) == 200
    clock.now += dt.timedelta(seconds=1)
    assert _api(app, token) == 401
    default = users.issue_token("monitor")
    clock.now += dt.timedelta(days=90)
    assert _api(app, default) == 401
    with pytest.raises(UserError, match="1 to 366 days"):
        users.issue_token("monitor", days=0)


def _link(app: Any, name: str = "nina") -> str:  # noqa: F811
    users: UserStore = app.state.users
    users.add(name, Role.MONITOR, recorder=recording([]))
    return users.issue_password_link(name, recording([]), new_user=True)


def _set(client: TestClient, token: str, password: str = NEW_PASSWORD) -> Any:
    csrf = _csrf(client.get("/login").text)
    return client.post("/set-password", data={"token": token, "password": password, "confirm": password, "csrf": csrf})


def test_a_new_user_chooses_their_password_once(app: Any) -> None:  # noqa: F811
    token = _link(app)
    client = TestClient(app, follow_redirects=False)
    page = client.get(f"/set-password?token={token}")
    assert page.status_code == 200
    assert "nina" in page.text
    app.state.access_events.clear()
    assert _set(client, token).status_code == 303
    assert app.state.users.authenticate("nina", NEW_PASSWORD) == User("nina", Role.MONITOR, None)
    (event,) = app.state.access_events
    assert (event.action, event.operator, event.via, event.subject) == (
        "user-password-set",
        "nina",
        "dashboard",
        "nina",
    )
    assert NEW_PASSWORD not in event.model_dump_json()
    assert token not in event.model_dump_json()
    # Used once: whoever tries it again (the admin who saw it, a proxy log) is refused.
    assert client.get(f"/set-password?token={token}").status_code == 410
    assert _set(client, token, "the attacker's own choice").status_code == 410
    assert app.state.users.authenticate("nina", NEW_PASSWORD) is not None


def test_an_expired_set_password_link_is_refused(app: Any, clock: Clock) -> None:  # noqa: F811
    token = _link(app)
    clock.now += dt.timedelta(hours=LINK_HOURS)
    client = TestClient(app, follow_redirects=False)
    assert client.get(f"/set-password?token={token}").status_code == 410
    assert _set(client, token).status_code == 410
    assert app.state.users.authenticate("nina", NEW_PASSWORD) is None


def test_a_new_link_replaces_the_old_one_and_the_password_rule_applies(app: Any) -> None:  # noqa: F811
    old = _link(app)
    new = app.state.users.issue_password_link("nina", recording([]))
    client = TestClient(app, follow_redirects=False)
    assert _set(client, old).status_code == 410
    assert _set(client, new, "short").status_code == 422
    assert _set(client, new).status_code == 303


def test_setting_a_password_with_the_access_log_away_changes_nothing(app: Any) -> None:  # noqa: F811
    token = _link(app)

    def away(event: AccessChanged) -> None:
        raise AccessLogError("away")

    app.state.publish_access = away
    client = TestClient(app, follow_redirects=False)
    assert _set(client, token).status_code == 503
    assert app.state.users.authenticate("nina", NEW_PASSWORD) is None
    assert app.state.users.user_for_link(token) is not None  # the link still works later


def test_an_admin_may_not_review_by_page_or_api(app: Any) -> None:  # noqa: F811
    tokens = {"admin": app.state.users.issue_token("admin")}
    finding = _first(app, lambda name: tokens.get(name) or app.state.users.issue_token(name), site="GZ-02")
    assert (
        _review(app, lambda name: tokens[name], "admin", finding["finding_id"], action="acknowledge").status_code == 403
    )
    admin = _client(app, "admin")
    page = admin.get(f"/findings/{finding['finding_id']}")
    assert 'name="action"' not in page.text  # no review form offered
    answer = admin.post(
        f"/findings/{finding['finding_id']}/reviews", data={"action": "acknowledge", "csrf": _csrf(page.text)}
    )
    assert answer.status_code == 403


def test_every_change_is_an_event_naming_operator_and_subject_without_a_secret(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    events: list[AccessChanged] = []
    changes = recording(events, "ops-alice")
    users.add("dana", Role.DATA_MANAGER, recorder=changes)
    secrets = [users.issue_password_link("dana", changes, new_user=True), users.issue_password_link("dana", changes)]
    users.set_password("dana", NEW_PASSWORD, changes)
    secrets.append(users.issue_token("dana", changes))
    users.revoke_token(users.tokens_of("dana")[0].token_id, changes)
    users.set_role("dana", Role.SITE, "GZ-01", changes)
    users.set_enabled("dana", False, changes)
    users.set_enabled("dana", True, changes)
    users.remove("dana", changes)
    assert [e.action.value for e in events] == [
        "user-added", "user-password-link-issued", "user-password-changed", "token-issued", "token-revoked",
        "user-role-changed", "user-disabled", "user-enabled", "user-removed",
    ]  # fmt: skip
    assert {(e.operator, e.via, e.subject) for e in events} == {("ops-alice", "cli", "dana")}
    assert [(e.role, e.site, e.enabled) for e in events][-4:] == [
        ("site", "GZ-01", True), ("site", "GZ-01", False), ("site", "GZ-01", True), ("site", "GZ-01", False)
    ]  # fmt: skip
    assert len({e.generation for e in events}) == 1
    with sqlite3.connect(users.path) as db:
        stored = [str(v) for row in db.execute("SELECT * FROM tokens") for v in row]
    secrets += [NEW_PASSWORD, *stored, *(hashlib.sha256(s.encode()).hexdigest() for s in secrets)]
    for event in events:
        text = event.model_dump_json()
        assert not [s for s in secrets if len(s) > 12 and s in text]


def test_with_the_access_log_away_nothing_changes(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    users.add("dana", Role.DATA_MANAGER, PASSWORD)
    token = users.issue_token("dana")
    for change in (
        lambda: users.set_enabled("dana", False, broker_away()),
        lambda: users.remove("dana", broker_away()),
        lambda: users.set_role("dana", Role.AUDITOR, None, broker_away()),
        lambda: users.set_password("dana", NEW_PASSWORD, broker_away()),
        lambda: users.revoke_token(users.tokens_of("dana")[0].token_id, broker_away()),
        lambda: users.add("eve", Role.ADMIN, recorder=broker_away()),
    ):
        with pytest.raises(AccessLogError):
            change()
    assert users.authenticate("dana", PASSWORD) == User("dana", Role.DATA_MANAGER, None)
    assert users.user_for_token(token) is not None
    assert users.get("eve") is None
    err = io.StringIO()
    args = parse("users", "disable", "dana", "--data-dir", str(tmp_path))
    assert users_state(args, stdout=io.StringIO(), stderr=err, recorder=broker_away()) == 3
    assert "nothing was changed" in err.getvalue()


def test_cli_role_change_and_unknown_user(tmp_path: Path) -> None:
    users = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    users.add("sid", Role.SITE, PASSWORD, site="GZ-01")
    out, err = io.StringIO(), io.StringIO()
    args = parse("users", "role", "sid", "--role", "site", "--site", "GZ-02", "--data-dir", str(tmp_path))
    assert users_role(args, stdout=out, stderr=err, recorder=recording([])) == 0
    assert users.get("sid") == User("sid", Role.SITE, "GZ-02")
    args = parse("users", "role", "sid", "--role", "monitor", "--site", "GZ-02", "--data-dir", str(tmp_path))
    assert users_role(args, stdout=out, stderr=err, recorder=recording([])) == 2
    args = parse("users", "remove", "ghost", "--data-dir", str(tmp_path))
    assert users_state(args, stdout=out, stderr=err, recorder=recording([])) == 1


def test_a_users_file_from_before_the_lifecycle_keeps_its_users_and_gives_tokens_an_expiry(tmp_path: Path) -> None:
    path = tmp_path / "users.sqlite3"
    old_hash = CHEAP.hash(PASSWORD)
    token = "an-old-token-issued-before-expiry-existed-0123"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, site TEXT, password_hash TEXT NOT NULL,"
            " created_at TEXT NOT NULL);"
            "CREATE TABLE tokens (token_sha256 TEXT PRIMARY KEY, name TEXT NOT NULL REFERENCES users(name) ON DELETE"
            " CASCADE, created_at TEXT NOT NULL);"
            "CREATE INDEX tokens_by_name ON tokens(name);"
        )
        db.execute(
            "INSERT INTO users VALUES ('dana', 'data-manager', NULL, ?, '2026-01-01T00:00:00+00:00')", (old_hash,)
        )
        digest = hashlib.sha256(token.encode()).hexdigest()
        db.execute("INSERT INTO tokens VALUES (?, 'dana', '2026-01-01T00:00:00+00:00')", (digest,))
    db.close()
    users = UserStore(path, hasher=CHEAP)
    assert users.authenticate("dana", PASSWORD) == User("dana", Role.DATA_MANAGER, None)
    assert users.user_for_token(token) == User("dana", Role.DATA_MANAGER, None)
    (listed,) = users.tokens_of("dana")
    assert listed.expires_at > listed.created_at
    assert re.fullmatch(r"[0-9a-f]{12}", listed.token_id)
    UserStore(path, hasher=CHEAP)  # opening it again migrates nothing twice
    assert users.count() == 1
