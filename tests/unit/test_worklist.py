"""The monitor's worklist in process: a list that holds still while findings arrive, each finding's
why in words (page, API, CSV and Excel the same), a form per review action, and exports that keep
to the user's site. The browser tests (tests/e2e/test_worklist.py) prove the same in Chromium."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import openpyxl
import pytest

from services.dashboard.store import ReadModel, Record
from tests.builders import event_dict
from tests.unit.test_dashboard_app import _client, _csrf, app, token  # noqa: F401 - fixtures
from tests.unit.test_read_model import _alert, _finding

T0 = 1_767_225_600_000
LAB_PARTICIPANT = "P-LAB"
WBC_FINDING = _finding(
    300,
    participant_id=LAB_PARTICIPANT,
    site_id="GZ-02",
    rule_id="ELIG-IN09",
    category="ELIGIBILITY",
    severity="important",
    term="Enrolled with an organ-function result out of range",
    protocol_reference="Inclusion 9",
    occurred_at="2024-02-12T09:00:00+08:00",
    evidence={"lymphocytes": 1.4, "wbc": 1.62, "neutrophils": 1.2, "hemoglobin": 101.0},
)
WBC_ID = WBC_FINDING["deviation_id"]


def _lab(value: float, at: str) -> dict[str, Any]:
    lab = event_dict(
        "ScreeningLabResulted",
        {"loinc": "6690-2", "value": value, "unit": "10*9/L", "uln": None},
        participant=LAB_PARTICIPANT,
        site="GZ-02",
    )
    return lab | {"occurred_at": at, "recorded_at": at}


WBC_LAB = _lab(1.62, "2024-02-09T08:00:00+08:00")
LATER_LAB = _lab(4.0, "2024-03-01T08:00:00+08:00")  # after the enrollment: not the one that counted


@pytest.fixture
def worklist(app: Any) -> Any:  # noqa: F811 - the fixture imported above
    """The unit app's findings, plus an ELIG-IN09 finding with its lab result and two safety alerts."""
    store: ReadModel = app.state.store
    topics = app.state.settings.kafka.topics
    events = [
        event_dict("ParticipantRegistered", {"birth_date": "2014-01-01", "sex": "F", "height_cm": 140.0,
                                             "weight_kg": 35.0}, participant=LAB_PARTICIPANT, site="GZ-02"),
        WBC_LAB,
        LATER_LAB,
    ]  # fmt: skip
    store.apply([Record(topics.participant_events, 0, n, T0, json.dumps(e).encode()) for n, e in enumerate(events)])
    # The alerts came first in Kafka time: newest-first puts them last unless open alerts go first.
    alerts = [_alert(400) | {"site_id": "GZ-02"}, _alert(401) | {"site_id": "GZ-01"}]
    store.apply(
        [Record(topics.deviations, 1, n, T0 - 86_400_000, json.dumps(a).encode()) for n, a in enumerate(alerts)]
    )
    store.apply([Record(topics.deviations, 2, 0, T0, json.dumps(WBC_FINDING).encode())])
    return app


def _arrive(served: Any, *numbers: int) -> None:
    store: ReadModel = served.state.store
    topics = served.state.settings.kafka.topics
    store.apply([Record(topics.deviations, 3, n, T0 + n * 1000, json.dumps(_finding(n)).encode()) for n in numbers])


def _ids(html: str) -> list[str]:
    return re.findall(r'data-finding-id="([^"]+)"', html)


def _number(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>([^<]*)<', html)
    assert found is not None, testid
    return found.group(1).strip()


def test_arrivals_neither_grow_nor_reorder_the_page_and_total_pager_and_summary_agree(worklist: Any) -> None:
    client = _client(worklist, "data-manager")
    first = client.get("/findings?limit=5").text
    as_of = re.search(r'data-as-of="(\d+)"', first)
    assert as_of is not None
    total = int(_number(first, "total"))
    _arrive(worklist, *range(600, 640))
    again = client.get(f"/findings?limit=5&as_of={as_of.group(1)}").text
    assert _ids(again) == _ids(first), "the same rows, in the same order"
    assert int(_number(again, "total")) == total
    assert _number(again, "pager") == f"1–5 of {total}"
    summary = re.search(r'data-testid="summary"[^>]*>(.*?)</table>', again, re.S)
    assert summary is not None
    assert sum(int(n) for n in re.findall(r'data-status="[a-z]+">(\d+)<', summary.group(1))) == total
    assert _number(again, "arrivals") == "40 new — show"
    arrivals = client.get(f"/api/arrivals?as_of={as_of.group(1)}").json()
    assert arrivals["arrived"] == 40
    shown = client.get(f"/findings?limit=5&as_of={arrivals['newest_seq']}").text
    assert int(_number(shown, "total")) == total + 40


def test_paging_a_snapshot_while_findings_arrive_shows_each_finding_once(worklist: Any) -> None:
    client = _client(worklist, "monitor")
    as_of = client.get("/api/findings?limit=1").json()["newest_seq"]
    snapshot = {item["finding_id"] for item in client.get(f"/api/findings?limit=1000&as_of={as_of}").json()["items"]}
    seen: list[str] = []
    for page in range(4):
        _arrive(worklist, *range(700 + page * 10, 710 + page * 10))  # new findings between two page loads
        listed = client.get(f"/api/findings?limit=5&offset={page * 5}&sort=participant&as_of={as_of}").json()
        assert listed["total"] == len(snapshot)
        seen += [item["finding_id"] for item in listed["items"]]
    assert len(seen) == len(set(seen)), "no finding twice"
    assert set(seen) == snapshot


def test_open_alerts_first_is_a_sort_the_user_can_turn_off(worklist: Any) -> None:
    client = _client(worklist, "monitor")
    default = client.get("/api/findings?limit=2").json()["items"]
    assert [item["kind"] for item in default] == ["alert", "alert"]
    off = client.get("/api/findings?limit=100&alerts_first=0").json()["items"]
    assert off[0]["kind"] == "deviation"
    assert [item["kind"] for item in off[-2:]] == ["alert", "alert"], "newest first: the older alerts come last"
    page = client.get("/findings").text
    toggle = re.search(r'href="([^"]+)" data-testid="alerts-first" data-on="1"', page)
    assert toggle is not None
    assert "alerts_first=0" in toggle.group(1)
    by_participant = client.get("/api/findings?limit=100&sort=participant&order=asc&alerts_first=1").json()["items"]
    assert [item["kind"] for item in by_participant[:2]] == ["alert", "alert"]


@pytest.mark.parametrize("query", ["as_of=soon", "as_of=-1", "alerts_first=maybe"])
def test_a_bad_snapshot_or_sort_switch_is_refused_naming_it(worklist: Any, query: str) -> None:
    answer = _client(worklist, "monitor").get(f"/api/findings?{query}")
    assert answer.status_code == 422
    assert query.split("=")[0] in answer.json()["detail"]


SENTENCE = "WBC 1.62 ×10⁹/L on 2024-02-09 is below the minimum 3.0 ×10⁹/L — Inclusion 9.1: “Hematopoietic function:"


def test_the_detail_page_says_why_first_highlights_the_value_and_links_the_lab_result(worklist: Any) -> None:
    page = _client(worklist, "monitor").get(f"/findings/{WBC_ID}").text
    why = re.search(r'data-testid="explanation"(.*?)</section>', page, re.S)
    assert why is not None
    assert SENTENCE in why.group(1)
    assert page.index('data-testid="explanation"') < page.index('data-testid="fields"'), "the why comes first"
    assert re.search(r'data-failing="wbc"><th>WBC</th><td><mark>1.62</mark>', page)
    assert 'data-failing="lymphocytes"' not in page, "only the value that broke a limit is highlighted"
    assert f'data-event-id="{WBC_LAB["event_id"]}"' in page, "the lab result that carried the value is linked"
    assert f'data-event-id="{LATER_LAB["event_id"]}"' not in page
    for key in ("ruleset_fingerprint", "deviation_id", "protocol_reference", "trigger_event_ids"):
        assert f"<th>{key}</th>" not in page, f"{key} shown as a key"


def test_the_api_csv_and_excel_carry_the_same_explanation(worklist: Any) -> None:
    client = _client(worklist, "data-manager")
    detail = client.get(f"/api/findings/{WBC_ID}").json()
    assert detail["explanation"].startswith(SENTENCE)
    assert detail["failing_evidence"] == ["wbc"]
    assert detail["value_events"] == [WBC_LAB["event_id"]]
    assert detail["finding"] == WBC_FINDING | {"ruleset_fingerprint": None}, "the finding as published, unchanged"
    rows = list(csv.DictReader(io.StringIO(client.get("/api/findings.csv?rule=ELIG-IN09").text)))
    assert [row["explanation"] for row in rows] == [detail["explanation"]]
    book = openpyxl.load_workbook(io.BytesIO(client.get("/api/findings.xlsx?rule=ELIG-IN09").content))
    sheet = book["Findings"]
    headings = [cell.value for cell in sheet[1]]
    assert sheet.cell(2, headings.index("Why") + 1).value == detail["explanation"]


def test_exports_hold_status_assignee_last_reason_comments_and_history(worklist: Any) -> None:
    client = _client(worklist, "data-manager")
    path = f"/findings/{WBC_ID}/reviews"
    csrf = _csrf(client.get(f"/findings/{WBC_ID}").text)
    for form in (
        {"action": "assign", "assignee": "monitor"},  # one of the study's users
        {"action": "comment", "comment": "=cmd|' /C calc'!A0 query sent to the site"},
        {"action": "resolve", "reason": "other", "reason_other": "repeat WBC 3.4 before dosing"},
    ):
        assert client.post(path, data={"csrf": csrf, **form}).status_code == 303
    row = next(csv.DictReader(io.StringIO(client.get("/api/findings.csv?rule=ELIG-IN09").text)))
    assert (row["status"], row["assignee"], row["last_reason"]) == (
        "resolved",
        "monitor",
        "Other: repeat WBC 3.4 before dosing",
    )
    assert "data-manager: =cmd|" in row["comments"]
    assert [line.split(" data-manager ")[1].split(" ")[1] for line in row["history"].splitlines()] == [
        "assign;", "comment;", "resolve;"
    ]  # fmt: skip
    book = openpyxl.load_workbook(io.BytesIO(client.get("/api/findings.xlsx?rule=ELIG-IN09").content))
    history = [[cell.value for cell in line] for line in book["History"].iter_rows(min_row=2)]
    assert [line[4] for line in history] == ["assign", "comment", "resolve"]
    assert history[2][6] == "Other: repeat WBC 3.4 before dosing"
    assert history[1][7].startswith("=cmd"), "kept as text"
    assert book["History"].cell(3, 8).data_type == "s", "a formula-like comment is a string, never a formula"


@pytest.mark.parametrize("export", ["/api/findings.csv", "/api/findings.xlsx"])
@pytest.mark.parametrize("query", ["", "?site=GZ-01", "?participant=P-001", "?as_of=999999&alerts_first=0"])
def test_a_site_users_export_holds_no_other_sites_row(
    worklist: Any,
    token: Any,  # noqa: F811 - a fixture
    export: str,
    query: str,
) -> None:
    everything = _client(worklist, "data-manager").get("/api/findings?limit=1000").json()["items"]
    others = {item["finding_id"] for item in everything if item["site_id"] != "GZ-02"}
    assert others
    answer = _client(worklist).get(export + query, headers={"Authorization": f"Bearer {token('site')}"})
    assert answer.status_code == 200
    if export.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        ids, sites = {r["finding_id"] for r in rows}, {r["site_id"] for r in rows}
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(answer.content))["Findings"]
        lines = [[cell.value for cell in line] for line in sheet.iter_rows(min_row=2)]
        ids, sites = {line[0] for line in lines}, {line[2] for line in lines}
    assert not ids & others
    assert sites <= {"GZ-02"}
    assert all(other not in (answer.text if export.endswith(".csv") else "") for other in others)


def _form(page: str, action: str) -> str:
    found = re.search(rf'data-testid="form-{action}">(.*?)</form>', page, re.S)
    assert found is not None, f"no {action} form"
    return found.group(1)


def test_each_action_shows_only_its_own_fields(worklist: Any) -> None:
    page = _client(worklist, "data-manager").get(f"/findings/{WBC_ID}").text
    fields = {
        action: set(re.findall(r'name="(\w+)"', _form(page, action))) - {"csrf", "action"}
        for action in ("acknowledge", "assign", "comment", "resolve", "close")
    }
    assert fields == {
        "acknowledge": {"comment"},
        "assign": {"assignee", "comment"},
        "comment": {"comment"},
        "resolve": {"reason", "reason_other", "comment"},
        "close": {"reason", "reason_other", "comment"},
    }
    assert "Data corrected at the site" in _form(page, "resolve")
    assert "Data entry error" in _form(page, "close")
    assert "Data entry error" not in _form(page, "resolve"), "each action its own reasons"


def _alert_id(served: Any) -> str:
    listed = _client(served, "data-manager").get("/api/findings?kind=alert&site=GZ-02").json()["items"]
    return str(listed[0]["finding_id"])


def test_closing_a_safety_alert_as_not_a_deviation_is_neither_offered_nor_accepted(
    worklist: Any,
    token: Any,  # noqa: F811 - a fixture
) -> None:
    alert = _alert_id(worklist)
    client = _client(worklist, "data-manager")
    page = client.get(f"/findings/{alert}").text
    assert 'data-testid="form-close"' not in page
    assert "not a deviation" not in page
    assert "Reported to the sponsor and ethics committee" in _form(page, "resolve"), "an alert's own reasons"
    refused = client.post(
        f"/findings/{alert}/reviews", data={"csrf": _csrf(page), "action": "close", "reason": "entry_error"}
    )
    assert refused.status_code == 422
    assert "A safety alert cannot be closed as not a deviation" in refused.text
    api = _client(worklist).post(
        f"/api/findings/{alert}/reviews",
        json={"action": "close", "reason": "other", "reason_other": "not serious after all"},
        headers={"Authorization": f"Bearer {token('data-manager')}"},
    )
    assert api.status_code == 422
    assert client.get(f"/api/findings/{alert}").json()["status"] == "open"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"action": "resolve"}, "Choose a reason to resolve this finding."),
        ({"action": "resolve", "reason": "because"}, "“because” is not a reason to resolve this finding"),
        ({"action": "resolve", "reason": "other"}, "You chose “other”: say what the reason is."),
        ({"action": "resolve", "reason": "data_corrected", "reason_other": "x"}, "go with “other” only"),
        ({"action": "close", "reason": "reported_expedited"}, "is not a reason to close this finding"),
        ({"action": "assign", "assignee": "<b>"}, "Assignee: use only letters, digits and . _ @ -"),
        ({"action": "comment", "comment": "   "}, "A comment is required to comment."),
    ],
)
def test_a_refused_review_says_why_in_plain_words(
    worklist: Any,
    token: Any,  # noqa: F811 - a fixture
    body: dict[str, str],
    said: str,
) -> None:
    answer = _client(worklist).post(
        f"/api/findings/{WBC_ID}/reviews", json=body, headers={"Authorization": f"Bearer {token('data-manager')}"}
    )
    assert answer.status_code == 422
    assert said in answer.json()["detail"]
    assert "Value error" not in answer.json()["detail"]


def test_the_reason_published_is_the_chosen_reasons_words(
    worklist: Any,
    token: Any,  # noqa: F811 - a fixture
) -> None:
    answer = _client(worklist).post(
        f"/api/findings/{WBC_ID}/reviews",
        json={"action": "resolve", "reason": "data_corrected"},
        headers={"Authorization": f"Bearer {token('data-manager')}"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["reason"] == "Data corrected at the site"


def test_sorting_paging_and_the_alerts_switch_keep_the_snapshot_and_the_page_size(worklist: Any) -> None:
    page = _client(worklist, "monitor").get("/findings?limit=5").text
    as_of = re.search(r'data-as-of="(\d+)"', page)
    assert as_of is not None
    links = re.findall(r'<th><a href="([^"]+)"', page)
    links += re.findall(r'href="([^"]+)" data-testid="(?:next|alerts-first|csv|xlsx)"', page)
    assert len(links) >= 15
    for link in links:
        assert f"as_of={as_of.group(1)}" in link, link
        assert "limit=5" in link or "/api/findings." in link, link
