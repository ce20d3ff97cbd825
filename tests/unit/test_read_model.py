"""The dashboard's read model without Kafka: records in, rows and offsets out, queries in SQL."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events import Topics
from services.dashboard import queries
from services.dashboard.store import ReadModel, Record

TOPICS = Topics("NCT06904729", "unit")
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms


def _finding(n: int, **changes: Any) -> dict[str, Any]:
    finding = {
        "event_type": "DeviationRaised",
        "schema_version": 1,
        "deviation_id": str(uuid.UUID(int=n)),
        "study_id": "NCT06904729",
        "site_id": "GZ-01" if n % 2 else "GZ-02",
        "participant_id": f"P-{n % 7:03d}",
        "rule_id": ["SEQ-02", "VISIT-01", "CONSENT-01"][n % 3],
        "protocol_version": "1.0",
        "category": ["STUDY PROCEDURE", "VISIT SCHEDULE", "INFORMED CONSENT"][n % 3],
        "severity": ["important", "minor", "important"][n % 3],
        "term": f"term {n}",
        "protocol_reference": "Design",
        "occurred_at": (
            dt.datetime(2026, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=8))) + dt.timedelta(days=n)
        ).isoformat(),
        "trigger_event_ids": [str(uuid.UUID(int=10_000 + n))],
        "evidence": {"n": n},
    }
    return finding | changes


def _alert(n: int) -> dict[str, Any]:
    alert = _finding(n, event_type="SafetyAlertRaised", rule_id="SAFETY-SAE")
    for key in ("deviation_id", "category", "severity"):
        alert.pop(key)
    return alert | {"alert_id": str(uuid.UUID(int=n))}


def _record(
    topic: str, offset: int, value: Any, partition: int = 0, headers: tuple[tuple[str, bytes], ...] = ()
) -> Record:
    body = value if isinstance(value, bytes) else json.dumps(value).encode()
    return Record(topic, partition, offset, T0 + offset * 1000, body, headers)


def _review(finding_id: str, action: str, **changes: Any) -> dict[str, Any]:
    review = {
        "review_id": str(uuid.uuid4()),
        "study_id": "NCT06904729",
        "site_id": "GZ-01",
        "participant_id": "P-001",
        "finding_id": finding_id,
        "action": action,
        "actor": "dana",
        "role": "data-manager",
        "reviewed_at": "2026-11-25T10:00:00+00:00",
    }
    return review | changes


@pytest.fixture
def model(tmp_path: Path) -> ReadModel:
    return ReadModel(tmp_path / "read-model.sqlite3", TOPICS)


def _status(model: ReadModel, finding_id: str) -> str:
    with model.reader() as db:
        found = queries.finding(db, finding_id)
    assert found is not None
    return str(found["status"])


def test_a_batch_writes_rows_and_offsets_together_and_a_redelivery_changes_nothing(model: ReadModel) -> None:
    batch = [_record(TOPICS.deviations, offset, _finding(offset)) for offset in range(5)]
    applied = model.apply(batch)
    assert len(applied.findings) == 5
    assert model.offsets(TOPICS.deviations) == {0: 5}
    again = model.apply([*batch, _record(TOPICS.deviations, 5, _finding(5))])
    assert again.skipped == 5
    assert len(again.findings) == 1
    assert model.offsets(TOPICS.deviations) == {0: 6}


def test_a_failed_batch_writes_nothing(model: ReadModel, monkeypatch: pytest.MonkeyPatch) -> None:
    model.apply([_record(TOPICS.deviations, 0, _finding(0))])

    def broken(*_: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(model, "_dead_letter", broken)
    batch = [_record(TOPICS.deviations, 1, _finding(1)), _record(TOPICS.dead_letter, 0, b"x")]
    with pytest.raises(sqlite3.OperationalError):
        model.apply(batch)
    assert model.offsets(TOPICS.deviations) == {0: 1}, "the offset moved without its rows"
    with model.reader() as db:
        assert queries.finding_total(db, queries.FindingFilter(), None) == 1


def test_a_restart_resumes_from_the_stored_offsets(tmp_path: Path) -> None:
    path = tmp_path / "read-model.sqlite3"
    first = ReadModel(path, TOPICS)
    first.apply([_record(TOPICS.deviations, 0, _finding(0), partition=2)])
    first.close()
    assert ReadModel(path, TOPICS).offsets(TOPICS.deviations) == {2: 1}


def test_reviews_fold_into_a_status_whatever_topic_arrives_first(model: ReadModel) -> None:
    finding_id = str(uuid.UUID(int=1))
    model.apply([_record(TOPICS.finding_reviews, 0, _review(finding_id, "acknowledge"))])  # before the finding
    model.apply([_record(TOPICS.deviations, 0, _finding(1))])
    assert _status(model, finding_id) == "acknowledged"
    model.apply(
        [
            _record(TOPICS.finding_reviews, 1, _review(finding_id, "assign", assignee="sam")),
            _record(TOPICS.finding_reviews, 2, _review(finding_id, "resolve", reason="re-consented")),
            _record(TOPICS.finding_reviews, 3, _review(finding_id, "resolve", reason="again: refused by the fold")),
        ]
    )
    with model.reader() as db:
        found = queries.finding(db, finding_id)
    assert found is not None
    assert (found["status"], found["assignee"]) == ("resolved", "sam")
    outcomes = [review["outcome"] for review in found["reviews"]]
    assert outcomes == [None, None, None, "cannot resolve a finding that is resolved"]


def test_unreadable_records_are_skipped_and_their_offsets_still_advance(model: ReadModel) -> None:
    applied = model.apply(
        [
            _record(TOPICS.deviations, 0, b"\xff not json"),
            _record(TOPICS.deviations, 1, {"event_type": "DeviationRaised"}),
            _record(TOPICS.finding_reviews, 0, b"[1, 2]"),
            _record(TOPICS.participant_events, 0, b"{}"),
        ]
    )
    assert not applied.findings
    assert not applied.reviews
    assert not applied.events
    assert model.offsets(TOPICS.deviations) == {0: 2}


def test_a_dead_letter_keeps_its_reason_source_and_truncated_bytes(model: ReadModel) -> None:
    headers = (
        ("trialguard.error", b"payload.value: not a number"),
        ("trialguard.source.topic", b"events"),
        ("trialguard.source.partition", b"3"),
        ("trialguard.source.offset", b"41"),
    )
    model.apply([_record(TOPICS.dead_letter, 0, b"<script>" + b"x" * 5000, headers=headers)])
    with model.reader() as db:
        (letter,) = queries.dead_letters(db)
    assert letter["reason"] == "payload.value: not a number"
    assert letter["source"] == "events[3]@41"
    assert letter["original_length"] == 5008
    assert len(letter["original"]) == 2048


def test_participant_events_feed_timelines_and_the_newest_event_time(model: ReadModel) -> None:
    lines = Path("examples/three-participants.jsonl").read_bytes().splitlines()
    model.apply([_record(TOPICS.participant_events, n, line) for n, line in enumerate(lines)])
    with model.reader() as db:
        events = queries.events_of(db, "E-02")
        newest = queries.meta(db, "newest_event_time")
    assert len(events) == 33
    assert events == sorted(events, key=lambda e: e["occurred_utc"])
    assert newest is not None
    assert newest.endswith("+00:00")


@pytest.fixture
def listed(model: ReadModel) -> ReadModel:
    records = [_record(TOPICS.deviations, n, _finding(n)) for n in range(30)]
    records += [_record(TOPICS.deviations, 30 + n, _alert(100 + n)) for n in range(3)]
    model.apply(records)
    return model


def _list(model: ReadModel, scope: str | None = None, **params: str) -> tuple[int, list[dict[str, Any]]]:
    found, page = queries.FindingFilter.from_params(params), queries.Page.from_params(params)
    with model.reader() as db:
        return queries.finding_total(db, found, scope), queries.finding_rows(db, found, page, scope)


@pytest.mark.parametrize(
    ("params", "total"),
    [
        ({}, 33),
        ({"rule": "SEQ-02"}, 10),
        ({"kind": "alert"}, 3),
        ({"category": "VISIT SCHEDULE"}, 10),
        ({"severity": "minor"}, 10),
        ({"site": "GZ-02"}, 17),
        ({"participant": "P-003"}, 5),
        ({"status": "open"}, 33),
        ({"status": "resolved"}, 0),
        ({"occurred_from": "2026-01-05", "occurred_to": "2026-01-09"}, 5),
        ({"q": "term 2"}, 11),
        ({"q": "%"}, 0),
        ({"rule": "SEQ-02", "site": "GZ-02"}, 5),
    ],
)
def test_each_filter_is_applied_in_sql_and_counted(listed: ReadModel, params: dict[str, str], total: int) -> None:
    counted, rows = _list(listed, **params, limit="1000")
    assert counted == total == len(rows)


def test_open_safety_alerts_come_first_by_default(listed: ReadModel) -> None:
    _, rows = _list(listed, limit="5")
    assert [row["kind"] for row in rows[:3]] == ["alert"] * 3
    assert rows[3]["kind"] == "deviation"


def test_sorting_and_paging(listed: ReadModel) -> None:
    _, first = _list(listed, sort="occurred", order="asc", limit="10")
    _, second = _list(listed, sort="occurred", order="asc", limit="10", offset="10")
    times = [row["occurred_utc"] for row in first + second]
    assert times == sorted(times)
    assert len(set(times)) == 20


def test_a_site_scope_cannot_be_widened_by_a_filter(listed: ReadModel) -> None:
    counted, rows = _list(listed, scope="GZ-01", site="GZ-02")
    assert counted == 0
    assert rows == []


def test_the_summary_follows_the_filter(listed: ReadModel) -> None:
    with listed.reader() as db:
        table = queries.summary(db, queries.FindingFilter(rule="SEQ-02"), None)
    assert table == {"STUDY PROCEDURE": {"open": 10}}


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"sort": "term; DROP TABLE findings"}, "sort="),
        ({"limit": "-1"}, "limit="),
        ({"limit": "1001"}, "limit="),
        ({"offset": "x"}, "offset="),
        ({"occurred_from": "yesterday"}, "occurred_from="),
        ({"kind": "other"}, "kind="),
        ({"status": "deleted"}, "status="),
    ],
)
def test_a_parameter_that_cannot_be_understood_is_named(params: dict[str, str], problem: str) -> None:
    def parse() -> None:
        queries.FindingFilter.from_params(params)
        queries.Page.from_params(params)

    with pytest.raises(queries.FilterError, match=problem):
        parse()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def hostile_records(draw: st.DrawFn) -> tuple[str, bytes, tuple[tuple[str, bytes], ...]]:
    """A record on one of the dashboard's topics: raw bytes, or a valid body with one field spoiled."""
    topic = draw(
        st.sampled_from([TOPICS.deviations, TOPICS.finding_reviews, TOPICS.participant_events, TOPICS.dead_letter])
    )
    if draw(st.booleans()):
        return topic, draw(st.binary(max_size=300)), ()
    body: dict[str, Any] = _alert(7) if draw(st.booleans()) else _finding(7)
    if topic == TOPICS.finding_reviews:
        body = _review(str(uuid.UUID(int=7)), draw(st.sampled_from(["acknowledge", "resolve", "reopen"])))
    body[draw(st.sampled_from(sorted(body)))] = draw(JSON_VALUES)
    headers = tuple(draw(st.lists(st.tuples(st.text(max_size=30), st.binary(max_size=30)), max_size=3)))
    return topic, json.dumps(body, default=str).encode(), headers


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(hostile_records(), min_size=1, max_size=8))
def test_any_record_on_any_topic_is_applied_or_skipped_and_its_offset_advances(
    tmp_path: Path, records: list[tuple[str, bytes, tuple[tuple[str, bytes], ...]]]
) -> None:
    model = ReadModel(tmp_path / f"{uuid.uuid4().hex}.sqlite3", TOPICS)
    batch = [Record(topic, 0, n, T0, value, headers) for n, (topic, value, headers) in enumerate(records)]
    model.apply(batch)
    for topic in {topic for topic, _, _ in records}:
        assert model.offsets(topic) == {0: max(n for n, r in enumerate(records) if r[0] == topic) + 1}
    with model.reader() as db:
        queries.finding_rows(db, queries.FindingFilter(), queries.Page(), None)
        for row in queries.dead_letters(db):
            assert len(row["original"]) <= 2048
    model.close()
