"""The dashboard scopes a site user by the participant's registered site, not by the site an event
or a finding claims: what a GZ-02 user would try after GZ-02 wrote into GZ-01's participant
(a record from before the rules service refused such events, or one a direct producer forged)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from services.dashboard.live import Broadcaster
from services.dashboard.store import Applied, ReadModel, Record
from tests.builders import event_dict
from tests.unit.test_dashboard_app import PASSWORD, _client, app, token  # noqa: F401 - fixtures
from tests.unit.test_read_model import TOPICS, _alert

VICTIM = "S3-00018"
FORGED_ALERT = _alert(500) | {"participant_id": VICTIM, "site_id": "GZ-02", "evidence": {"ctcae_grade": 3}}
FORGED_ID = FORGED_ALERT["alert_id"]


def _events(site: str, *kinds: tuple[str, dict[str, Any]]) -> list[bytes]:
    return [json.dumps(event_dict(kind, payload, participant=VICTIM, site=site)).encode() for kind, payload in kinds]


BORN = {"birth_date": "2014-01-01", "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}
REGISTRATION = ("ParticipantRegistered", BORN)
LAB = ("ScreeningLabResulted", {"loinc": "751-8", "value": 2.1, "unit": "10*9/L", "uln": None})
AE = ("AdverseEventReported", {"term": "Pneumonia", "ctcae_grade": 3, "serious": True})


@pytest.fixture
def victimised(app: Any) -> Any:  # noqa: F811 - the fixture imported above
    """GZ-01's participant, its lab, and GZ-02's forged adverse event and the alert it raised;
    the alert read before the registration (another topic: any order can happen)."""
    store: ReadModel = app.state.store
    topics = app.state.settings.kafka.topics
    store.apply([Record(topics.deviations, 1, 0, 0, json.dumps(FORGED_ALERT).encode())])
    lines = [*_events("GZ-01", REGISTRATION, LAB), *_events("GZ-02", AE)]
    store.apply([Record(topics.participant_events, 0, n, 0, line) for n, line in enumerate(lines)])
    app.state.users.add("site1", "site", PASSWORD, "GZ-01")
    return app


def _as(app: Any, token: Any, user: str, path: str) -> Any:  # noqa: F811
    return _client(app).get(path, headers={"Authorization": f"Bearer {token(user)}"})


def test_the_other_site_sees_nothing_of_the_participant_it_wrote_into(victimised: Any, token: Any) -> None:  # noqa: F811 - a fixture
    site_app = victimised
    assert _as(site_app, token, "site", f"/api/participants/{VICTIM}/timeline").status_code == 404
    assert _as(site_app, token, "site", f"/api/findings/{FORGED_ID}").status_code == 404
    assert _as(site_app, token, "site", f"/api/findings?participant={VICTIM}").json()["total"] == 0
    assert VICTIM not in _as(site_app, token, "site", "/api/findings.csv").text
    assert _as(site_app, token, "site", f"/participants/{VICTIM}").status_code == 404


def test_the_registered_site_sees_its_participant_and_the_alert(victimised: Any, token: Any) -> None:  # noqa: F811 - a fixture
    site_app = victimised
    timeline = _as(site_app, token, "site1", f"/api/participants/{VICTIM}/timeline")
    assert timeline.status_code == 200
    assert timeline.json()["site_id"] == "GZ-01"
    listed = _as(site_app, token, "site1", f"/api/findings?participant={VICTIM}").json()
    assert [(i["finding_id"], i["site_id"]) for i in listed["items"]] == [(FORGED_ID, "GZ-01")]
    assert _as(site_app, token, "site1", f"/api/findings/{FORGED_ID}").status_code == 200


def test_a_site_users_newest_seq_and_counters_are_its_own(victimised: Any, token: Any) -> None:  # noqa: F811 - a fixture
    site_app = victimised
    everyone = _as(site_app, token, "monitor", "/api/findings").json()["newest_seq"]
    own = _as(site_app, token, "site", "/api/findings").json()["newest_seq"]
    assert own < everyone  # GZ-01's newest finding (the alert) does not show in GZ-02's counter


async def test_live_updates_tell_a_site_only_of_its_own_sites_findings() -> None:
    live = Broadcaster()
    gz02, everyone = live.updates("GZ-02"), live.updates(None)
    for stream in (gz02, everyone):
        assert (await anext(stream))["event"] == "ready"
    live.applied(Applied(findings=["a", "b"], reviews=["r"], sites=["GZ-01", "GZ-01", "GZ-01"]))
    live.applied(Applied(findings=["c"], sites=["GZ-02"]))
    assert json.loads((await anext(everyone))["data"]) == {"findings": 2, "reviews": 1}
    assert json.loads((await anext(gz02))["data"]) == {"findings": 1, "reviews": 0}
    for stream in (gz02, everyone):
        await stream.aclose()


def test_the_read_model_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    model = ReadModel(shared / "read-model.sqlite3", TOPICS)
    model.apply([])
    assert stat.S_IMODE(os.stat(model.path).st_mode) == 0o600


@pytest.mark.parametrize(
    ("action", "extra", "field"),
    [
        ("comment", {"comment": "seen", "assignee": "nobody"}, "assignee"),
        ("acknowledge", {"reason": "because"}, "reason"),
        ("assign", {"assignee": "dana", "reason": "x"}, "reason"),
    ],
)
def test_a_field_the_action_does_not_use_is_refused_not_stored(
    app: Any,  # noqa: F811 - a fixture
    token: Any,  # noqa: F811 - a fixture
    action: str,
    extra: dict[str, str],
    field: str,
) -> None:
    finding = _as(app, token, "monitor", "/api/findings?site=GZ-02").json()["items"][0]["finding_id"]
    answer = _client(app).post(
        f"/api/findings/{finding}/reviews",
        json={"action": action, **extra},
        headers={"Authorization": f"Bearer {token('data-manager')}"},
    )
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{field}: not used to {action}")
    assert _as(app, token, "auditor", f"/api/findings/{finding}").json()["reviews"] == []


def test_a_site_named_none_does_not_get_every_sites_overview_chart(
    app: Any,  # noqa: F811 - a fixture
    token: Any,  # noqa: F811 - a fixture
) -> None:
    from services.dashboard import timeline

    app.state.users.add("nonesite", "site", PASSWORD, "None")
    timeline._cache.clear()
    assert _as(app, token, "monitor", "/overview").status_code == 200
    assert _as(app, token, "nonesite", "/overview").status_code == 200
    drawn = [json.loads(key[1]) for key in timeline._cache if key[0] == "overview"]
    assert [scope for _study, scope, *_ in drawn] == [None, "None"]  # two charts: every site's, and site None's
