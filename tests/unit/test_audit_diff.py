"""audit diff and recompute, in process: comparison cases, per-rule counts, exit codes, --as-of."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from services.audit.diff import VERSION_FIELDS, compare, render_table, to_json
from services.audit.recompute import as_of_ms, new_replay, parse_as_of, recompute, records_from_file
from services.audit.replay_cli import in_scope
from services.cli import main
from services.ledger.export_format import ExportedRecord, record_line

ROOT = Path(__file__).resolve().parents[2]


def finding(fid: str, rule: str = "CONSENT-01", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "deviation_id": fid,
        "rule_id": rule,
        "participant_id": "P-1",
        "protocol_version": "1.0",
        "occurred_at": "2025-01-01T00:00:00Z",
        "trigger_event_ids": [f"t-{fid}"],
        "evidence": {"age": 30},
    }
    return {**base, **changes}


A, B, C = finding("a"), finding("b", "ELIG-IN04"), finding("c", "RELAPSE")

CASES = [
    # (name, expected, actual, missing, extra, changed, exit code)
    ("equal", [A, B], [B, A], 0, 0, 0, 0),
    ("both empty", [], [], 0, 0, 0, 0),
    ("missing", [A, B], [A], 1, 0, 0, 1),
    ("extra", [A], [A, C], 0, 1, 0, 1),
    ("changed top-level", [A], [finding("a", site_id="S2")], 0, 0, 1, 1),
    ("changed evidence", [A], [finding("a", evidence={"age": 17})], 0, 0, 1, 1),
    ("all three", [A, B], [finding("a", term="x"), C], 1, 1, 1, 1),
]


@pytest.mark.parametrize(("name", "expected", "actual", "missing", "extra", "changed", "code"), CASES)
def test_compare_cases(
    name: str, expected: list[object], actual: list[object], missing: int, extra: int, changed: int, code: int
) -> None:
    diff = compare(expected, actual)
    assert (len(diff.missing), len(diff.extra), len(diff.changed)) == (missing, extra, changed), name
    assert diff.exit_code == code
    assert diff.equal is (code == 0)
    assert ("EQUAL" if code == 0 else "DIFFERENT") in render_table(diff)
    json.dumps(to_json(diff))  # the JSON form is serialisable whatever the case


def test_changed_names_the_fields_that_differ() -> None:
    diff = compare([A], [finding("a", evidence={"age": 17, "extra": 1}, protocol_version="2.0")])
    (change,) = diff.changed
    assert change.fields == ("evidence.age", "evidence.extra", "protocol_version")


def test_a_field_present_on_one_side_only_differs() -> None:
    (change,) = compare([A], [finding("a", ruleset_fingerprint="abc")]).changed
    assert change.fields == ("ruleset_fingerprint",)


def test_version_fields_are_ignored_for_a_shadow_comparison() -> None:
    shadow = finding("a", protocol_version="2.0", ruleset_fingerprint="f")
    assert compare([A], [shadow], ignore=VERSION_FIELDS).equal
    assert not compare([A], [shadow]).equal


def test_counts_per_rule() -> None:
    diff = compare([A, B, finding("d")], [A, finding("b", "ELIG-IN04", term="x"), C])
    counts = {rule: vars(c) for rule, c in diff.by_rule.items()}
    assert counts["CONSENT-01"] == {"expected": 2, "actual": 1, "same": 1, "missing": 1, "extra": 0, "changed": 0}
    assert counts["ELIG-IN04"] == {"expected": 1, "actual": 1, "same": 0, "missing": 0, "extra": 0, "changed": 1}
    assert counts["RELAPSE"] == {"expected": 0, "actual": 1, "same": 0, "missing": 0, "extra": 1, "changed": 0}
    table = render_table(diff)
    assert "total" in table
    assert "RELAPSE" in table


def test_alert_ids_identify_too_and_non_findings_make_the_sides_differ() -> None:
    alert = {"alert_id": "z", "rule_id": "SAFETY-01"}
    assert compare([alert], [alert]).equal
    diff = compare([alert], [alert, "topic:0@3: not JSON", {"rule_id": "X"}])
    assert len(diff.unidentified) == 2
    assert diff.exit_code == 1


def test_a_duplicate_id_makes_the_sides_differ() -> None:
    diff = compare([A], [A, A])
    assert diff.duplicates == 1
    assert diff.exit_code == 1


def test_as_of_is_an_instant_with_an_offset() -> None:
    moment = parse_as_of("2025-01-01T01:00:00+01:00")
    assert as_of_ms(moment) == as_of_ms(dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == 1735689600000
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_as_of("2025-01-01T00:00:00")


def _export(path: Path, lines: list[bytes], times: list[int], namespace: str = "trialguard") -> None:
    """An export-like file of participant-events records, keyed by participant, with these timestamps."""
    topic = f"{namespace}.NCT06904729.participant-events"
    with path.open("w") as f:
        for offset, (line, ts) in enumerate(zip(lines, times, strict=True)):
            key = json.loads(line)["participant_id"].encode()
            f.write(record_line(ExportedRecord(topic, 0, offset, ts, key, line, "0" * 64)) + "\n")


@pytest.fixture
def cohort(tmp_path: Path) -> list[bytes]:
    events = tmp_path / "events.jsonl"
    assert main(["simulate", "--participants", "12", "--seed", "3", "--out", str(events)]) == 0
    return [line for line in events.read_bytes().splitlines() if line.strip()]


def test_as_of_keeps_only_records_received_by_then(tmp_path: Path, cohort: list[bytes]) -> None:
    half = len(cohort) // 2
    times = [1_000 if i < half else 2_000 for i in range(len(cohort))]
    path = tmp_path / "export.jsonl"
    _export(path, cohort, times)
    everything = recompute(records_from_file(path, "NCT06904729"), new_replay("NCT06904729"), source="x")
    first = recompute(records_from_file(path, "NCT06904729"), new_replay("NCT06904729"), source="x", as_of=1_999)
    assert everything.records == first.records == len(cohort)
    assert first.after_as_of == len(cohort) - half
    assert first.replay.processed == half
    assert len(first.findings) < len(everything.findings)
    # What was raised by then is what the whole log raises for the events received by then.
    before = {f["deviation_id"] if "deviation_id" in f else f["alert_id"] for f in first.finding_objects()}
    due = in_scope(everything.finding_objects(), first.late_event_ids)
    assert compare(first.finding_objects(), due).equal
    assert before <= {f.get("deviation_id") or f.get("alert_id") for f in everything.finding_objects()}


def test_an_export_gives_the_findings_of_plain_lines(tmp_path: Path, cohort: list[bytes]) -> None:
    plain, export = tmp_path / "plain.jsonl", tmp_path / "export.jsonl"
    plain.write_bytes(b"\n".join(cohort) + b"\n")
    _export(export, cohort, [5] * len(cohort))
    a = recompute(records_from_file(plain, "NCT06904729"), new_replay("NCT06904729"), source="p")
    b = recompute(records_from_file(export, "NCT06904729"), new_replay("NCT06904729"), source="e")
    assert a.findings == b.findings
    assert a.findings


def test_a_record_whose_key_is_not_its_participant_is_rejected_as_live(tmp_path: Path, cohort: list[bytes]) -> None:
    path = tmp_path / "export.jsonl"
    topic = "trialguard.NCT06904729.participant-events"
    path.write_text(record_line(ExportedRecord(topic, 0, 0, 1, b"someone-else", cohort[0], "0" * 64)) + "\n")
    done = recompute(records_from_file(path, "NCT06904729"), new_replay("NCT06904729"), source="e")
    assert done.rejected == 1
    assert done.replay.processed == 0


def test_audit_replay_command_exit_codes(
    tmp_path: Path, cohort: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"\n".join(cohort) + b"\n")
    out = tmp_path / "findings.jsonl"
    assert main(["audit", "replay", "--events", str(plain), "--out", str(out)]) == 0
    assert out.read_bytes().count(b"\n") > 0
    assert "audit replay of" in capsys.readouterr().err
    # plain lines carry no broker time; a missing file; a malformed export
    assert main(["audit", "replay", "--events", str(plain), "--as-of", "2025-01-01T00:00:00Z"]) == 2
    assert main(["audit", "replay", "--events", str(tmp_path / "absent")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"record","topic":"t"}\n')
    assert main(["audit", "replay", "--events", str(bad)]) == 2
    with pytest.raises(SystemExit) as exited:
        main(["audit", "diff", "--as-of", "yesterday"])
    assert exited.value.code == 2
    assert main(["audit", "diff", "--shadow", "no spaces/allowed"]) == 2
