"""Two studies in one dashboard, as attacks: what a user of study A tries against study B.

A dashboard serving NCT06904729 (A) and NCT06946485 (B), each with its own read model. A monitor
and a site user of A ask for B's findings by id, by ``?study=``, by bearer token, through every
page, the API, the CSV, the live stream, the charts and the timeline; every answer is the 404 an
unknown study or finding gets, word for word. A user with roles in both switches between them and
acts with the role of the study they are in. The participant id P-002 exists in both studies, at site GZ-02.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from contracts import FindingReviewed
from services.access_log import AccessRecorder
from services.dashboard.app import create_app
from services.dashboard.live import Broadcaster
from services.dashboard.settings import DashboardSettings
from services.dashboard.store import Applied, ReadModel, Record
from services.dashboard.study_scope import NoStudyChosenError, StudyScoped
from services.dashboard.users import UserStore
from services.kafka import KafkaSettings
from tests.unit.test_dashboard_app import PASSWORD, _client, _csrf
from tests.unit.test_read_model import _finding

A, B = "NCT06904729", "NCT06946485"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SECRET_TERM = "B-only term"
B_FINDINGS = [str(uuid.UUID(int=5000 + n)) for n in range(4)]


def _b_finding(n: int) -> dict[str, Any]:
    return _finding(n) | {
        "deviation_id": B_FINDINGS[n],
        "study_id": B,
        "participant_id": "P-002",  # the same participant id as one of A's
        "site_id": "GZ-02",  # the same site id as A's site user
        "rule_id": "ELIG-B",
        "term": f"{SECRET_TERM} {n}",
    }


@pytest.fixture
def app(tmp_path: Path) -> Any:
    kafka = KafkaSettings("127.0.0.1:1", A, "unit")
    settings = DashboardSettings(kafka, tmp_path, "127.0.0.1", 0, review_wait_seconds=2, studies=(A, B))
    users = UserStore(tmp_path / "users.sqlite3", hasher=CHEAP)
    users.add("mona", "monitor", PASSWORD, study=A)
    users.add("sid", "site", PASSWORD, "GZ-02", study=A)
    users.add("dana", "data-manager", PASSWORD, study=A)
    users.add("bea", "data-manager", PASSWORD, study=B)
    users.add("both", "data-manager", PASSWORD, study=A)
    events: list[Any] = []
    users.set_role("both", "monitor", None, AccessRecorder(B, "test", "cli", events.append))
    app = create_app(settings, users)
    offsets = iter(range(10**6))
    for study, findings in ((A, [_finding(n) for n in range(8)]), (B, [_b_finding(n) for n in range(4)])):
        store = ReadModel(settings.read_model_path_of(study), settings.kafka_of(study).topics)
        topic = store.topics.deviations
        store.apply([Record(topic, 0, n, 1_767_225_600_000, json.dumps(f).encode()) for n, f in enumerate(findings)])
        app.state.stores[study] = store

    async def publish(review: FindingReviewed) -> None:
        store = app.state.stores[review.study_id]
        record = Record(store.topics.finding_reviews, 0, next(offsets), 0, review.model_dump_json().encode())
        app.state.live.applied(store.apply([record]))

    class Lag:
        async def lag(self) -> dict[str, int]:
            return {}

    app.state.publish, app.state.consumer = publish, Lag()
    app.state.access_events = events
    app.state.publish_access = events.append
    return app


def _bearer(app: Any, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.state.users.issue_token(user)}"}


def _paths_of_b(finding: str) -> list[str]:
    return [
        f"/findings/{finding}",
        f"/api/findings/{finding}",
        f"/findings?study={B}",
        f"/findings?study={B}&queue=unassigned",
        f"/api/findings?study={B}",
        f"/api/summary?study={B}",
        f"/api/findings.csv?study={B}",
        f"/api/findings.xlsx?study={B}",
        f"/api/arrivals?study={B}&as_of=0",
        f"/api/live?study={B}",
        f"/api/queues?study={B}",
        f"/api/views?study={B}",
        f"/overview?study={B}",
        f"/operations?study={B}",
        f"/participants/P-002?study={B}",
        f"/api/participants/P-002/timeline?study={B}",
        f"/findings/{finding}?study={B}",
        f"/api/findings/{finding}?study={B}",
    ]


NOT_SERVED = "NCT00000000"


@pytest.mark.parametrize("user", ["mona", "sid"])
def test_a_user_of_study_a_gets_404_for_study_b_everywhere(app: Any, user: str) -> None:
    pages, api = _client(app, user), TestClient(app, headers=_bearer(app, user))
    for client in (pages, api):
        for path in _paths_of_b(B_FINDINGS[0]):
            answer = client.get(path)
            assert answer.status_code == 404, (path, answer.status_code)
            assert SECRET_TERM not in answer.text
            assert "ELIG-B" not in answer.text
            # Word for word what a study that does not exist gets: nothing tells B exists.
            unknown = client.get(path.replace(B, NOT_SERVED).replace(B_FINDINGS[0], str(uuid.UUID(int=9999))))
            assert (unknown.status_code, unknown.text) == (answer.status_code, answer.text), path


@pytest.mark.parametrize("user", ["mona", "sid"])
def test_study_a_lists_csv_charts_and_timeline_hold_nothing_of_study_b(app: Any, user: str) -> None:
    client = TestClient(app, headers=_bearer(app, user))
    listed = client.get("/api/findings?limit=1000").json()
    assert listed["items"]
    assert not {i["finding_id"] for i in listed["items"]} & set(B_FINDINGS)
    assert SECRET_TERM not in client.get("/api/findings.csv").text
    assert "ELIG-B" not in json.dumps(client.get("/api/summary").json())
    timeline = client.get("/api/participants/P-002/timeline").json()
    assert timeline["findings"]
    assert not {f["finding_id"] for f in timeline["findings"]} & set(B_FINDINGS)
    pages = _client(app, user)
    assert "ELIG-B" not in pages.get("/overview").text
    assert SECRET_TERM not in pages.get("/participants/P-002").text


def test_a_reviewer_of_study_a_cannot_review_study_b_findings(app: Any) -> None:
    client = _client(app, "dana")
    csrf = _csrf(client.get("/findings").text)
    for path in (f"/findings/{B_FINDINGS[0]}/reviews", f"/findings/{B_FINDINGS[0]}/reviews?study={B}"):
        answer = client.post(path, data={"csrf": csrf, "action": "acknowledge"})
        assert answer.status_code == 404
    api = TestClient(app, headers=_bearer(app, "dana"))
    for path in (f"/api/findings/{B_FINDINGS[0]}/reviews", f"/api/findings/{B_FINDINGS[0]}/reviews?study={B}"):
        assert api.post(path, json={"action": "acknowledge"}).status_code == 404
    with app.state.stores[B].reader() as db:
        assert db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


def test_the_switcher_shows_the_other_study_for_a_user_with_roles_in_both(app: Any) -> None:
    client = _client(app, "both")
    first = client.get("/findings")
    assert first.status_code == 200
    assert SECRET_TERM not in first.text
    assert 'data-testid="study-select"' in first.text
    assert f"<option>{B}</option>" in first.text
    switched = client.get(f"/findings?study={B}")
    assert switched.status_code == 200
    assert SECRET_TERM in switched.text
    assert "both · monitor" in switched.text  # her role in B, not A's data-manager
    # The session remembers the study: links without ?study= stay in B.
    assert SECRET_TERM in client.get("/findings").text
    assert client.get(f"/findings/{B_FINDINGS[1]}").status_code == 200
    csrf = _csrf(client.get("/findings").text)
    refused = client.post(f"/findings/{B_FINDINGS[1]}/reviews", data={"csrf": csrf, "action": "close", "reason": "x"})
    assert refused.status_code == 403  # a monitor in B may not close
    back = client.get(f"/findings?study={A}")
    assert back.status_code == 200
    assert SECRET_TERM not in back.text
    assert "both · data-manager" in back.text


def test_a_review_goes_to_the_study_it_was_taken_in(app: Any) -> None:
    client = _client(app, "both")
    client.get(f"/findings?study={B}")
    csrf = _csrf(client.get("/findings").text)
    answer = client.post(f"/findings/{B_FINDINGS[2]}/reviews", data={"csrf": csrf, "action": "acknowledge"})
    assert answer.status_code == 303
    with app.state.stores[B].reader() as db:
        study, role = db.execute("SELECT json_extract(body, '$.study_id'), role FROM reviews").fetchone()
    assert (study, role) == (B, "monitor")


def test_a_bearer_token_without_study_uses_the_first_study_and_remembers_nothing(app: Any) -> None:
    api = TestClient(app, headers=_bearer(app, "both"))
    assert api.get(f"/api/findings/{B_FINDINGS[0]}").status_code == 404  # A is the default
    assert api.get(f"/api/findings/{B_FINDINGS[0]}?study={B}").status_code == 200
    assert api.get(f"/api/findings/{B_FINDINGS[0]}").status_code == 404  # nothing remembered


def test_a_revoked_study_role_ends_the_session_and_the_study(app: Any) -> None:
    client = _client(app, "both")
    assert client.get(f"/findings?study={B}").status_code == 200
    events: list[Any] = []
    app.state.users.revoke_role("both", AccessRecorder(B, "test", "cli", events.append))
    assert client.get(f"/findings?study={B}").status_code == 303  # sessions ended: log in again
    again = _client(app, "both")
    assert again.get(f"/findings?study={B}").status_code == 404
    assert again.get("/findings").status_code == 200  # still a data-manager of A
    (change,) = events
    assert (change.study_id, change.action.value, change.enabled) == (B, "user-role-changed", False)


async def test_live_updates_of_one_study_never_reach_a_page_of_the_other() -> None:
    live = Broadcaster()
    page_a, page_b = live.updates(None, study=A), live.updates(None, study=B)
    for stream in (page_a, page_b):
        assert (await anext(stream))["event"] == "ready"
    live.applied(Applied(study=B, findings=["x", "y"], sites=["GZ-02", "GZ-02"]))
    live.applied(Applied(study=A, findings=["z"], sites=["GZ-01"]))
    assert json.loads((await anext(page_a))["data"]) == {"findings": 1, "reviews": 0}
    assert json.loads((await anext(page_b))["data"]) == {"findings": 2, "reviews": 0}
    with pytest.raises(TimeoutError):  # nothing more for A: B's batch was not A's business
        await asyncio.wait_for(anext(page_a), 0.05)
    for stream in (page_a, page_b):
        await stream.aclose()


def test_a_study_scoped_object_refuses_to_guess_outside_a_request(app: Any) -> None:
    with pytest.raises(NoStudyChosenError):
        app.state.store.reader()
    assert isinstance(app.state.store, StudyScoped)


def test_a_user_store_from_before_roles_per_study_keeps_its_roles_in_the_legacy_study_only(tmp_path: Path) -> None:
    old = tmp_path / "users.sqlite3"
    UserStore(tmp_path / "template.sqlite3")  # a current file, whose tables but study_roles make the v1 file
    with sqlite3.connect(tmp_path / "template.sqlite3") as template, sqlite3.connect(old) as db:
        for (sql,) in template.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name<>'study_roles'"):
            db.execute(sql)
        db.execute(
            "INSERT INTO users (name, uid, role, site, password_hash, enabled, session_version, created_at)"
            " VALUES ('olga', 'u1', 'site', 'GZ-02', NULL, 1, 0, '2025-01-01T00:00:00+00:00')"
        )
        db.execute("PRAGMA user_version = 1")
    migrated = UserStore(old, legacy=A).get("olga")
    assert migrated is not None
    assert [(r.study_id, r.role.value, r.site) for r in migrated.studies] == [(A, "site", "GZ-02")]
    assert migrated.in_study(B) is None


def test_a_participant_id_of_both_studies_never_shows_the_other_studys_timeline_picture(app: Any) -> None:
    from services.dashboard import timeline

    # P-TWIN has one finding in each study, with the same sequence number in each read model:
    # what a cache keyed by participant and data version alone would mix up.
    fillers = [_b_finding(0) | {"deviation_id": str(uuid.UUID(int=7000 + n))} for n in range(4)]
    twin_b = _b_finding(3) | {"deviation_id": str(uuid.UUID(int=7100)), "participant_id": "P-TWIN"}
    twin_a = _finding(30) | {"participant_id": "P-TWIN", "site_id": "GZ-02"}
    for study, findings in ((B, [*fillers, twin_b]), (A, [twin_a])):
        store = app.state.stores[study]
        first = 100
        records = [
            Record(store.topics.deviations, 0, first + n, 0, json.dumps(f).encode()) for n, f in enumerate(findings)
        ]
        store.apply(records)
    mona = _client(app, "mona")

    def picture(client: TestClient, path: str) -> str:
        page = str(client.get(path).text)
        return page[page.index("<svg") : page.index("</svg>")]

    timeline._cache.clear()
    own = picture(mona, "/participants/P-TWIN")
    timeline._cache.clear()
    other = picture(_client(app, "both"), f"/participants/P-TWIN?study={B}")  # B's picture drawn and cached
    assert other != own
    assert picture(mona, "/participants/P-TWIN") == own


def test_an_api_call_pinned_to_a_study_does_not_switch_the_other_tabs(app: Any) -> None:
    client = _client(app, "both")
    assert client.get(f"/findings?study={B}").status_code == 200
    page = client.get("/findings").text
    assert f"study={B}" in page.split('id="live-status"')[1].split(">")[0]  # the live script's query
    assert client.get(f"/api/summary?study={A}").status_code == 200  # another tab's script
    assert SECRET_TERM in client.get("/findings").text  # still B


def test_an_admin_of_one_study_lists_and_adds_users_of_that_study_only(app: Any) -> None:
    app.state.users.add("ada", "admin", PASSWORD, study=A)
    app.state.users.add("bob", "admin", PASSWORD, study=B)
    page = _client(app, "ada").get("/admin/users").text
    assert "<td>mona</td>" in page
    assert "<td>bea</td>" not in page  # a user of B only
    admin_b = _client(app, "bob")
    listed = admin_b.get("/admin/users").text
    assert "<td>bea</td>" in listed
    assert "<td>mona</td>" not in listed
    csrf = _csrf(listed)
    added = admin_b.post("/admin/users", data={"csrf": csrf, "name": "nina", "role": "monitor"})
    assert added.status_code == 200
    nina = app.state.users.get("nina")
    assert nina is not None
    assert [held.study_id for held in nina.studies] == [B]
    assert app.state.access_events[-1].study_id == B  # on B's access log
    assert _client(app, "ada").get("/admin/users?study=" + B).status_code == 404
