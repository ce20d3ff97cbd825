"""Work queues, assignees and saved views, as a curious or careless user would try them.

The two-study dashboard of ``test_dashboard_studies``: assigning to a name that is no user of the
study (a typo, a user of the other study, a site user who cannot see the finding) is refused in
plain words; "assigned to me", "unassigned" and "overdue" hold what they say with their counts in
the header; saved views belong to one user in one study.
"""

from __future__ import annotations

import dataclasses
import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.dashboard.settings import DEFAULT_OVERDUE_DAYS, parse_overdue_days
from tests.unit.test_dashboard_app import _client, _csrf
from tests.unit.test_dashboard_studies import A, B, _bearer, app  # noqa: F401 - the fixture

GZ01_FINDING = "00000000-0000-0000-0000-000000000001"  # _finding(1): site GZ-01, P-001


def _assign(client: TestClient, finding: str, assignee: str) -> Any:
    csrf = _csrf(client.get(f"/findings/{finding}").text)
    return client.post(f"/findings/{finding}/reviews", data={"csrf": csrf, "action": "assign", "assignee": assignee})


def _count(html: str, queue: str) -> int:
    found = re.search(rf'data-testid="queue-{queue}">[^<]*<span class="count">(\d+)</span>', html)
    assert found is not None, queue
    return int(found.group(1))


@pytest.mark.parametrize(
    ("assignee", "problem"),
    [
        ("nobody", "'nobody' is not a user of study NCT06904729; choose one of the study's users"),
        ("bea", "'bea' is not a user of study NCT06904729"),  # a user of the other study only
        ("sid", "'sid' works for another site and cannot see this finding"),  # GZ-02's, the finding GZ-01's
    ],
)
def test_an_assignee_who_is_not_one_of_the_studys_users_is_refused(app: Any, assignee: str, problem: str) -> None:  # noqa: F811
    client = _client(app, "dana")
    answer = _assign(client, GZ01_FINDING, assignee)
    assert answer.status_code == 422
    assert problem in html.unescape(answer.text)
    api = TestClient(app, headers=_bearer(app, "dana"))
    refused = api.post(f"/api/findings/{GZ01_FINDING}/reviews", json={"action": "assign", "assignee": assignee})
    assert refused.status_code == 422
    assert problem in refused.json()["detail"]
    with app.state.stores[A].reader() as db:
        assert db.execute("SELECT count(*) FROM reviews").fetchone()[0] == 0


def test_the_assign_form_offers_the_users_who_may_see_the_finding(app: Any) -> None:  # noqa: F811
    page = _client(app, "dana").get(f"/findings/{GZ01_FINDING}").text
    offered = re.findall(
        r"<option>([^<]+)</option>", page[page.index('data-testid="assignee"') :].split("</select>")[0]
    )
    assert offered == ["both", "dana", "mona"]  # not bea (study B), not sid (site GZ-02)
    api = TestClient(app, headers=_bearer(app, "dana"))
    assert api.get("/api/assignees?site=GZ-02").json() == ["both", "dana", "mona", "sid"]
    assert TestClient(app, headers=_bearer(app, "mona")).get("/api/assignees").status_code == 403


def test_assigned_to_me_unassigned_and_their_counts(app: Any) -> None:  # noqa: F811
    dana = _client(app, "dana")
    before = dana.get("/findings").text
    assert (_count(before, "mine"), _count(before, "unassigned")) == (0, 8)
    assert _assign(dana, GZ01_FINDING, "mona").status_code == 303
    mona = TestClient(app, headers=_bearer(app, "mona"))
    mine = mona.get("/api/findings?queue=mine").json()
    assert [i["finding_id"] for i in mine["items"]] == [GZ01_FINDING]
    # "mine" is the asker's own, whatever assignee the request names.
    assert (
        TestClient(app, headers=_bearer(app, "dana")).get("/api/findings?queue=mine&assignee=mona").json()["total"] == 0
    )
    after = dana.get("/findings").text
    assert (_count(after, "mine"), _count(after, "unassigned")) == (0, 7)
    assert _count(_client(app, "mona").get("/findings").text, "mine") == 1
    assert mona.get("/api/queues").json()["queues"] == {"mine": 1, "unassigned": 7, "overdue": 8}


def test_overdue_follows_the_studys_setting_and_leaves_resolved_findings_out(app: Any) -> None:  # noqa: F811
    api = TestClient(app, headers=_bearer(app, "dana"))
    assert api.get("/api/findings?queue=overdue").json()["total"] == 8  # events of early 2026, 14 days
    dana = _client(app, "dana")
    csrf = _csrf(dana.get(f"/findings/{GZ01_FINDING}").text)
    resolved = dana.post(
        f"/findings/{GZ01_FINDING}/reviews", data={"csrf": csrf, "action": "resolve", "reason": "data_corrected"}
    )
    assert resolved.status_code == 303
    assert api.get("/api/findings?queue=overdue").json()["total"] == 7
    app.state.settings = dataclasses.replace(app.state.settings, overdue_days=((A, 3650),))
    assert api.get("/api/queues").json() == {"study": A, "overdue_days": 3650, "queues": {
        "mine": 0, "unassigned": 7, "overdue": 0}}  # fmt: skip
    # A cutoff sent in the request is not believed.
    assert api.get("/api/findings?queue=overdue&overdue_before=9999").json()["total"] == 0


def test_saved_views_belong_to_one_user_in_one_study(app: Any) -> None:  # noqa: F811
    dana = _client(app, "dana")
    csrf = _csrf(dana.get("/findings").text)
    saved = dana.post(
        "/views", data={"csrf": csrf, "name": "My open SEQ", "query": "rule=SEQ-02&queue=mine&sort=rule&evil=1"}
    )
    assert saved.status_code == 303
    assert "evil" not in saved.headers["location"]
    page = dana.get("/findings").text
    assert 'data-testid="saved-view">My open SEQ</a>' in page
    (view,) = TestClient(app, headers=_bearer(app, "dana")).get("/api/views").json()
    assert view["query"] == "rule=SEQ-02&queue=mine&sort=rule&order=desc"
    assert "My open SEQ" not in _client(app, "mona").get("/findings").text  # another user's
    both = _client(app, "both")
    both_csrf = _csrf(both.get("/findings").text)
    assert both.post(f"/views/{view['view_id']}/delete", data={"csrf": both_csrf}).status_code == 404
    assert dana.post(f"/views/{view['view_id']}/delete?study={A}", data={"csrf": csrf}).status_code == 303
    assert TestClient(app, headers=_bearer(app, "dana")).get("/api/views").json() == []
    refused = dana.post("/views", data={"csrf": csrf, "name": "bad", "query": "status=lost"})
    assert refused.status_code == 422
    assert dana.post("/views", data={"name": "no csrf", "query": ""}).status_code == 403


def test_a_view_saved_in_one_study_is_not_offered_in_the_other(app: Any) -> None:  # noqa: F811
    api = TestClient(app, headers={**_bearer(app, "both")})
    assert api.post(f"/api/views?study={B}", json={"name": "B view", "query": {"rule": "ELIG-B"}}).status_code == 201
    assert [v["name"] for v in api.get(f"/api/views?study={B}").json()] == ["B view"]
    assert api.get(f"/api/views?study={A}").json() == []


def test_overdue_days_per_study_from_options_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALGUARD_DASHBOARD_OVERDUE_DAYS", "30")
    assert parse_overdue_days([f"{B}=7"], (A, B)) == ((A, 30), (B, 7))
    monkeypatch.delenv("TRIALGUARD_DASHBOARD_OVERDUE_DAYS")
    assert parse_overdue_days([], (A,)) == ((A, DEFAULT_OVERDUE_DAYS),)
    for bad, says in (("0", "DAYS from 1"), ("x=3", "not served"), ("soon", "expected DAYS")):
        with pytest.raises(ValueError, match=says):
            parse_overdue_days([bad], (A, B))


def test_the_studys_users_are_not_listed_to_who_may_not_assign(app: Any) -> None:  # noqa: F811
    for user in ("mona", "sid"):
        page = _client(app, user).get("/findings/00000000-0000-0000-0000-000000000002").text
        assert "<option>dana</option>" not in page, user
