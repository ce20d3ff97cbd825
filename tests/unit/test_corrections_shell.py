"""Lab corrections and retractions in the shell: the rules service's records, the read model, the
SDTM DV export, the audit diff, the dashboard and replay (the core: test_corrections.py)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from contracts import DeviationRaised, FindingSuperseded, Output, ParticipantEvent, encode
from protocol import ParticipantState
from protocol.nct06904729 import PROTOCOL
from tests.journey import outputs
from tests.unit.corrections_support import ALT_4X, KafkaRecord, alt_of, corrected, enrolled_journey, retracted
from tests.unit.test_dashboard_app import app  # noqa: F401  (the dashboard fixture)


def superseding_log() -> tuple[list[ParticipantEvent], list[Output]]:
    events = enrolled_journey(ALT_4X)
    log = [*events, corrected(alt_of(events).event_id, 80)]
    return log, outputs(log)


def test_the_rules_service_publishes_the_supersession_on_deviations_without_counting_a_rule() -> None:
    from services.kafka import KafkaSettings
    from services.rules.records import RecordHandler

    settings = KafkaSettings(study_id="NCT06904729")
    handler = RecordHandler(settings, PROTOCOL)
    log, expected = superseding_log()
    states: dict[str, ParticipantState] = {}
    out = []
    for offset, e in enumerate(log):
        record = KafkaRecord(settings.topics.participant_events, 0, offset, b"P-0001", encode(e))
        out += handler.handle(record, states)
    assert [o.value for o in out] == [encode(f) for f in expected]
    assert {o.topic for o in out} == {settings.topics.deviations}
    assert [o.rule_id for o in out] == ["ELIG-IN09", None]  # metrics count findings raised, by rule


def test_the_read_model_marks_the_finding_superseded_and_not_open(tmp_path: Path) -> None:
    from events import Topics
    from services.dashboard import queries
    from services.dashboard.store import ReadModel, Record

    topics = Topics("NCT06904729", "unit")
    model = ReadModel(tmp_path / "read-model.sqlite3", topics)
    _, found = superseding_log()
    raised, superseded = found
    assert isinstance(raised, DeviationRaised)
    assert isinstance(superseded, FindingSuperseded)
    model.apply([Record(topics.deviations, 0, n, 1_767_225_600_000, encode(f)) for n, f in enumerate(found)])
    with model.reader() as db:
        row = queries.finding(db, str(raised.deviation_id))
        unresolved = queries.finding_total(db, queries.FindingFilter(status="unresolved"), None)
        open_ = queries.finding_total(db, queries.FindingFilter(status="open"), None)
        summary = queries.summary(db, queries.FindingFilter(), None)
        by_rule = queries.counts_by(db, "rule_id", None)
        total = queries.finding_total(db, queries.FindingFilter(), None)
    assert row is not None
    assert row["superseded_by"] == str(superseded.superseded_by_event_id)
    assert (total, unresolved, open_) == (1, 0, 0)  # still listed, never counted as open
    assert summary == {"ELIGIBILITY": {"superseded": 1}}
    assert by_rule == [("ELIG-IN09", 1, 0)]


def test_the_sdtm_dv_export_leaves_superseded_deviations_out() -> None:
    from services.audit import sdtm

    log, found = superseding_log()
    assert sdtm.build(found, log, PROTOCOL).dv == []
    kept = sdtm.build(found[:1], log, PROTOCOL).dv
    assert [row.dvterm for row in kept] == ["Enrolled with an organ-function result out of range"]


def test_audit_diff_identifies_a_supersession_by_finding_and_correction() -> None:
    from services.audit.diff import compare
    from services.audit.diff import finding_id as diff_id

    _, found = superseding_log()
    objects = [json.loads(encode(f)) for f in found]
    superseded = found[1]
    assert isinstance(superseded, FindingSuperseded)
    assert diff_id(objects[1]) == f"{superseded.finding_id}+{superseded.superseded_by_event_id}"
    assert compare(objects, objects).equal
    missing = compare(objects, objects[:1])
    assert [diff_id(o) for o in missing.missing] == [diff_id(objects[1])]


def test_the_dashboard_strikes_a_superseded_finding_through_and_links_the_correction(app: Any) -> None:  # noqa: F811
    from services.dashboard.store import Record
    from tests.unit.test_dashboard_app import _client

    _, found = superseding_log()
    raised, superseded = found
    assert isinstance(raised, DeviationRaised)
    assert isinstance(superseded, FindingSuperseded)
    topics = app.state.settings.kafka.topics
    app.state.store.apply(
        [Record(topics.deviations, 0, 100 + n, 1_767_225_600_000, encode(f)) for n, f in enumerate(found)]
    )
    client = _client(app, "monitor")
    link = f"/participants/P-0001#event-{superseded.superseded_by_event_id}"
    listed = client.get("/findings?rule=ELIG-IN09").text
    assert re.search(rf'<tr class="[^"]*\bsuperseded\b[^"]*" data-finding-id="{raised.deviation_id}"', listed)
    assert link in listed
    detail = client.get(f"/findings/{raised.deviation_id}").text
    assert 'data-testid="superseded"' in detail
    assert link in detail


def test_replay_counts_unmatched_corrections_in_its_summary_and_exits_0(tmp_path: Path) -> None:
    import io

    from services.replay import run

    events = enrolled_journey(ALT_4X)
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"\n".join(encode(e) for e in [*events, retracted(uuid.UUID(int=7))]) + b"\n")
    stderr = io.StringIO()
    status = run(str(log), str(tmp_path / "out.jsonl"), "NCT06904729", stdin=io.BytesIO(), stdout=io.BytesIO(),
                 stderr=stderr)  # fmt: skip
    assert status == 0
    assert re.search(r"corrections unmatched\s+1\s+named no kept result", stderr.getvalue())
