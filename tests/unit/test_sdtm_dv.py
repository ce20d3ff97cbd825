"""SDTM DV export: the mapping table by table, then dv.xpt / suppdv.xpt written and read back."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
from pathlib import Path
from typing import Any

import pyreadstat
import pytest

from contracts import DeviationRaised, FindingReviewed, ReviewStatus, parse_event
from events.replay import Replay
from protocol.nct06904729 import PROTOCOL
from protocol.registry import protocol_for
from services.audit import sdtm
from services.audit.sdtm_cli import run
from services.cli import main
from services.kafka import KafkaSettings
from services.ledger.export_format import ExportedRecord, record_line
from tests.builders import EXAMPLE_EVENTS, STUDY, example_lines

ALERTS = {r.rule_id for r in PROTOCOL.rules if r.kind.value == "alert"}
DEVIATIONS = {r.rule_id for r in PROTOCOL.rules if r.kind.value == "deviation"}
UNREACHABLE = KafkaSettings("127.0.0.1:1", STUDY, "unused")
"""Offline exports must never need it: a broker that is not there."""


def export(events: Path, out: Path, fmt: str = "xpt") -> tuple[Any, Any, Any, Any]:
    """Run the command offline; DV and SUPPDV as read back (data, metadata) twice."""
    err = io.StringIO()
    assert run(str(out), None, fmt, str(events), UNREACHABLE, stderr=err) == 0, err.getvalue()
    if fmt == "csv":
        return out.read_text(), None, out.with_name("supp" + out.name).read_text(), None
    dv, dv_meta = pyreadstat.read_xport(str(out))
    supp, supp_meta = pyreadstat.read_xport(str(out.with_name("supp" + out.name)))
    return dv, dv_meta, supp, supp_meta


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The simulated cohort of the brief: 60 participants, seed 5."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.jsonl"
    assert main(["simulate", "--participants", "60", "--seed", "5", "--out", str(path)]) == 0
    return path


def replayed(path: Path) -> list[Any]:
    replay = Replay(protocol_for(STUDY))
    return [f for line in path.read_bytes().splitlines() if line.strip() for f in replay.feed(parse_event(line))]


# --- the mapping, table by table ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("short", "short"),
        ("a" * 200, "a" * 200),
        ("a" * 201, "a" * 200),
        ("a" * 199 + "é", "a" * 199),  # é is 2 bytes: it would end at byte 201, so it goes whole
        ("a" * 198 + "é", "a" * 198 + "é"),
        ("€" * 70, "€" * 66),  # 3 bytes each: 66 make 198, a 67th would make 201
    ],
)
def test_clip_cuts_at_200_bytes_on_a_character_boundary(value: str, expected: str) -> None:
    assert sdtm.clip(value) == expected
    assert len(sdtm.clip(value).encode()) <= 200


@pytest.mark.parametrize(
    ("stage", "epoch"),
    [
        ("unknown", "SCREENING"),
        ("registered", "SCREENING"),
        ("consented", "SCREENING"),
        ("screening", "SCREENING"),
        ("eligible", "SCREENING"),
        ("screen-failed", "SCREENING"),
        ("enrolled (A)", "TREATMENT"),
        ("leukapheresis", "TREATMENT"),
        ("lymphodepletion", "TREATMENT"),
        ("infused", "FOLLOW-UP"),
        ("follow-up", "FOLLOW-UP"),
        ("completed", "FOLLOW-UP"),
        ("infused, relapsed (still followed)", "FOLLOW-UP"),
        ("withdrawn (after enrolled (B))", "TREATMENT"),
        ("withdrawn (after screening)", "SCREENING"),
        ("withdrawn (after follow-up, relapsed (still followed))", "FOLLOW-UP"),
    ],
)
def test_epoch_of_each_lifecycle_stage(stage: str, epoch: str) -> None:
    assert sdtm.epoch_of(stage) == epoch


@pytest.mark.parametrize(
    ("rule", "category", "decod"),
    [
        ("ELIG-IN01", "ELIGIBILITY", "INCLUSION CRITERION NOT MET"),
        ("ELIG-IN08", "INFORMED CONSENT", "INFORMED CONSENT NOT OBTAINED"),
        ("ELIG-EX10", "ELIGIBILITY", "EXCLUSION CRITERION MET"),
        ("ELIG-MISSING", "ELIGIBILITY", "ELIGIBILITY ASSESSMENT NOT DONE"),
        ("CONSENT-01", "INFORMED CONSENT", "PROCEDURE BEFORE INFORMED CONSENT"),
        ("DOSE-01", "INVESTIGATIONAL PRODUCT", "INCORRECT DOSE ADMINISTERED"),
        ("VISIT-02", "VISIT SCHEDULE", "MISSED VISIT"),
        ("NEW-99", "STUDY PROCEDURE", "STUDY PROCEDURE DEVIATION"),  # a rule the table does not know
    ],
)
def test_dvdecod_per_rule_then_per_category(rule: str, category: str, decod: str) -> None:
    assert sdtm.dvdecod(rule, category) == decod


def test_every_deviation_rule_of_the_catalogue_has_its_own_coded_term() -> None:
    generic = set(sdtm.DECOD_BY_CATEGORY.values())
    for rule in PROTOCOL.rules:
        if rule.category is not None:
            assert sdtm.dvdecod(rule.rule_id, rule.category.value) not in generic, rule.rule_id


def test_names_and_labels_fit_xpt_v5() -> None:
    for labels in (sdtm.DV_LABELS, sdtm.SUPPDV_LABELS):
        assert all(len(name) <= 8 and len(label) <= 40 for name, label in labels.items())


def _review(finding: uuid.UUID, action: str, **extra: Any) -> FindingReviewed:
    return FindingReviewed.model_validate(
        {
            "review_id": str(uuid.uuid4()),
            "study_id": STUDY,
            "site_id": "GZ-01",
            "participant_id": "E-02",
            "finding_id": str(finding),
            "action": action,
            "actor": "dm",
            "role": "data-manager",
            "reviewed_at": "2026-01-05T10:00:00+00:00",
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("actions", "status"),
    [
        ([], ReviewStatus.OPEN),
        (["acknowledge"], ReviewStatus.ACKNOWLEDGED),
        (["acknowledge", "resolve"], ReviewStatus.RESOLVED),
        (["close", "reopen"], ReviewStatus.OPEN),
        (["close", "resolve"], ReviewStatus.CLOSED),  # refused from closed, as on the dashboard
        (["comment"], ReviewStatus.OPEN),
    ],
)
def test_review_status_is_the_fold_of_reviews(actions: list[str], status: ReviewStatus) -> None:
    finding = uuid.uuid4()
    text = {"reason": "checked", "comment": "seen"}
    reviews = [_review(finding, a, **text) for a in actions]
    assert sdtm.review_statuses(reviews + reviews).get(finding, ReviewStatus.OPEN) is status  # twice: counted once


def test_a_long_term_is_clipped_in_the_rows() -> None:
    (finding,) = [f for f in replayed(EXAMPLE_EVENTS) if f.rule_id == "DOSE-01"]
    long = finding.model_copy(update={"term": "é" * 150, "protocol_reference": "x" * 300})
    (row,) = sdtm.build([long], [], PROTOCOL).dv
    assert row.dvterm == "é" * 100
    assert row.dvscat == "x" * 200


# --- files written and read back ---------------------------------------------------------------


def test_example_cohort_dv_and_suppdv(tmp_path: Path) -> None:
    dv, meta, supp, supp_meta = export(EXAMPLE_EVENTS, tmp_path / "dv.xpt")
    assert (tmp_path / "dv.xpt").read_bytes().startswith(b"HEADER RECORD*******LIBRARY HEADER RECORD")  # v5, not LIBV8
    assert meta.table_name == "DV"
    assert supp_meta.table_name == "SUPPDV"
    assert meta.column_names_to_labels == sdtm.DV_LABELS
    assert supp_meta.column_names_to_labels == sdtm.SUPPDV_LABELS
    findings = {f.rule_id: f for f in replayed(EXAMPLE_EVENTS) if isinstance(f, DeviationRaised)}
    rows = dv.to_dict("records")
    assert rows == [
        {
            "STUDYID": STUDY,
            "DOMAIN": "DV",
            "USUBJID": f"{STUDY}-GZ-01-{pid}",
            "DVSEQ": 1.0,
            "DVREFID": str(findings[rule].deviation_id),
            "DVSPID": rule,
            "DVTERM": findings[rule].term,
            "DVDECOD": decod,
            "DVCAT": cat,
            "DVSCAT": scat,
            "EPOCH": epoch,
            "DVSTDTC": at,
            "DVSTDY": day,
        }
        for pid, rule, decod, cat, scat, epoch, at, day in [
            (
                "E-02",
                "DOSE-01",
                "INCORRECT DOSE ADMINISTERED",
                "INVESTIGATIONAL PRODUCT",
                "Interventions: dose",
                "TREATMENT",
                "2025-12-17T10:30:00+08:00",
                1.0,  # the dose deviation is the infusion itself: day 1
            ),
            (
                "E-03",
                "CONSENT-01",
                "PROCEDURE BEFORE INFORMED CONSENT",
                "INFORMED CONSENT",
                "Inclusion 8",
                "SCREENING",
                "2025-11-29T10:30:00+08:00",
                -32.0,  # infused 2025-12-31: 32 days before, no day 0
            ),
        ]
    ]
    qualifiers = [
        (r["USUBJID"][-4:], r["QNAM"], r["QLABEL"], r["QVAL"], r["QORIG"], r["QEVAL"]) for r in supp.to_dict("records")
    ]
    assert qualifiers == [  # sorted by the keys: QNAM last
        ("E-02", "DVREVST", "Review Status", "OPEN", "Derived", ""),
        ("E-02", "DVSEVR", "Deviation Severity", "IMPORTANT", "Assigned", "CLINICAL STUDY SPONSOR"),
        ("E-03", "DVREVST", "Review Status", "OPEN", "Derived", ""),
        ("E-03", "DVSEVR", "Deviation Severity", "IMPORTANT", "Assigned", "CLINICAL STUDY SPONSOR"),
    ]
    assert set(supp["RDOMAIN"]) == {"DV"}
    assert set(supp["IDVAR"]) == {"DVSEQ"}
    assert set(supp["IDVARVAL"]) == {"1"}


def test_simulated_cohort_every_deviation_no_alert_within_limits(cohort: Path, tmp_path: Path) -> None:
    dv, _meta, supp, _ = export(cohort, tmp_path / "dv.xpt")
    deviations = [f for f in replayed(cohort) if isinstance(f, DeviationRaised)]
    assert len(deviations) > 5, "the cohort should raise deviations for this test to mean something"
    assert sorted(dv["DVREFID"]) == sorted(str(f.deviation_id) for f in deviations)
    assert set(dv["DVSPID"]) <= DEVIATIONS
    assert not set(dv["DVSPID"]) & ALERTS
    assert list(dv.columns) == list(sdtm.DV_LABELS)
    assert set(dv["DOMAIN"]) == {"DV"}
    assert set(dv["EPOCH"]) <= {"SCREENING", "TREATMENT", "FOLLOW-UP"}
    for column in dv.columns.drop(["DVSEQ", "DVSTDY"]):
        assert all(isinstance(v, str) and len(v.encode()) <= 200 for v in dv[column]), column
    for subject, group in dv.groupby("USUBJID"):
        assert list(group["DVSEQ"]) == list(range(1, len(group) + 1)), subject
    for row in dv.to_dict("records"):
        dt.datetime.fromisoformat(row["DVSTDTC"])  # ISO 8601
    assert len(supp) == 2 * len(dv)
    linked = {(r["USUBJID"], r["IDVARVAL"]) for r in supp.to_dict("records")}
    assert linked == {(r["USUBJID"], str(int(r["DVSEQ"]))) for r in dv.to_dict("records")}


def test_dvseq_is_stable_across_exports_and_after_appending_events(cohort: Path, tmp_path: Path) -> None:
    first, *_ = export(cohort, tmp_path / "a.xpt")
    second, *_ = export(cohort, tmp_path / "b.xpt")
    assert first.equals(second)
    lines = cohort.read_bytes().splitlines(keepends=True)
    early = tmp_path / "early.jsonl"
    early.write_bytes(b"".join(lines[: len(lines) // 2]))
    before, *_ = export(early, tmp_path / "early.xpt")
    after = dict(zip(first["DVREFID"], first["DVSEQ"], strict=True))
    assert 0 < len(before) < len(first)
    assert {ref: after[ref] for ref in before["DVREFID"]} == dict(zip(before["DVREFID"], before["DVSEQ"], strict=True))


def test_a_late_finding_dated_earlier_takes_the_next_number() -> None:
    findings = [f for f in replayed(EXAMPLE_EVENTS) if isinstance(f, DeviationRaised)]
    first = findings[0]
    later = first.model_copy(
        update={"deviation_id": uuid.uuid4(), "occurred_at": first.occurred_at - dt.timedelta(days=30)}
    )
    rows = sdtm.build([first, later], [], PROTOCOL).dv
    assert [(r.dvrefid, r.dvseq) for r in rows] == [(str(first.deviation_id), 1), (str(later.deviation_id), 2)]


def test_csv_has_the_same_rows(tmp_path: Path) -> None:
    text, _, supp_text, _ = export(EXAMPLE_EVENTS, tmp_path / "dv.csv", fmt="csv")
    header, *rows = text.splitlines()
    assert header.split(",") == list(sdtm.DV_LABELS)
    assert len(rows) == 2
    assert supp_text.splitlines()[0].split(",") == list(sdtm.SUPPDV_LABELS)


def test_an_audit_export_file_gives_the_same_rows_and_its_reviews(tmp_path: Path) -> None:
    dv, *_ = export(EXAMPLE_EVENTS, tmp_path / "dv.xpt")
    (dose,) = [f for f in replayed(EXAMPLE_EVENTS) if f.rule_id == "DOSE-01"]
    review = _review(dose.deviation_id, "acknowledge").model_dump_json().encode()
    records = [(f"trialguard.{STUDY}.participant-events", line) for line in example_lines()]
    records.append((f"trialguard.{STUDY}.finding-reviews", review))
    lines = [
        record_line(ExportedRecord(topic, 0, offset, 0, None, value, "0" * 64))
        for offset, (topic, value) in enumerate(records)
    ]
    exported = tmp_path / "audit-export.jsonl"
    exported.write_text("".join(line + "\n" for line in lines))
    again, _, supp, _ = export(exported, tmp_path / "from-export.xpt")
    assert again.equals(dv)
    statuses = {r["USUBJID"][-4:]: r["QVAL"] for r in supp.to_dict("records") if r["QNAM"] == "DVREVST"}
    assert statuses == {"E-02": "ACKNOWLEDGED", "E-03": "OPEN"}


def test_rejected_lines_are_reported_and_the_rest_exported(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_bytes(EXAMPLE_EVENTS.read_bytes() + json.dumps({"event_type": "Nonsense"}).encode() + b"\n")
    err = io.StringIO()
    assert run(str(tmp_path / "dv.xpt"), None, "xpt", str(log), UNREACHABLE, stderr=err) == 1
    assert "skipped:" in err.getvalue()
    assert len(pyreadstat.read_xport(str(tmp_path / "dv.xpt"))[0]) == 2


def test_command_line_writes_both_files(tmp_path: Path) -> None:
    out, supp = tmp_path / "dv.xpt", tmp_path / "elsewhere.xpt"
    argv = ["export", "sdtm-dv", "--events", str(EXAMPLE_EVENTS), "--out", str(out), "--supp-out", str(supp)]
    assert main(argv) == 0
    assert len(pyreadstat.read_xport(str(out))[0]) == 2
    assert len(pyreadstat.read_xport(str(supp))[0]) == 4
