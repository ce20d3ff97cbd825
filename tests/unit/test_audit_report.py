"""The audit report renders what it is given, escaped, in one self-contained file."""

from __future__ import annotations

import datetime as dt
import re

from services.audit.report import CheckResult, PartitionExtent, ReportInputs, VersionRow, render
from tests.unit.test_read_model import _alert, _finding

HOSTILE = "<script>alert(1)</script>"


def _inputs(**changes: object) -> ReportInputs:
    findings = tuple([_finding(n) for n in range(9)] + [_alert(50), _finding(60, site_id=HOSTILE)])
    inputs = ReportInputs(
        study_id="NCT06904729",
        generated_at=dt.datetime(2026, 11, 25, 12, tzinfo=dt.UTC),
        source="export events.jsonl",
        versions=(VersionRow("1.0", "from the start", "all", "ab" * 32),),
        extent=(PartitionExtent(0, 0, 99, 100, "2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),),
        verification=CheckResult(True, "4 partitions, 100 records, 4 signed checkpoints"),
        diff=CheckResult(False, "1 extra finding", ("SEQ-02: 1 extra",)),
        findings=findings,
        review_status={str(findings[0]["deviation_id"]): "resolved"},
    )
    return ReportInputs(**{**inputs.__dict__, **changes})


def test_the_report_states_each_section_and_needs_nothing_else() -> None:
    html = render(_inputs())
    for heading in (
        "Protocol versions in force",
        "The log",
        "Hash chain and signed checkpoints",
        "Recomputed findings against the findings published",
        "By rule",
        "By category",
        "Deviations by severity",
        "By site",
        "Important deviations",
    ):
        assert heading in html
    assert "ab" * 32 in html
    assert "PASSED" in html
    assert "FAILED" in html
    assert "<svg" in html
    assert "resolved" in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "the file must not load anything"


def test_data_is_escaped() -> None:
    html = render(_inputs())
    assert HOSTILE not in html
    assert "&lt;script&gt;" in html


def test_without_a_review_topic_the_status_column_is_left_out() -> None:
    html = render(_inputs(review_status=None))
    assert "Review status</th>" not in html
    assert "review statuses are not shown" in html


def test_the_access_log_is_shown_with_operator_action_and_subject() -> None:
    from contracts import AccessAction
    from tests.unit.test_access_read_model import _change

    changes = (
        _change(AccessAction.USER_ADDED, 0, subject="dana"),
        _change(AccessAction.TOKEN_REVOKED, 5, subject="dana", token_id="0123456789ab"),
        _change(AccessAction.SOURCE_KEY_ROTATED, 9, subject="lis.gz01"),
    )
    html = render(_inputs(access_changes=changes))
    section = html.split("Access: who changed which user, token or source")[1]
    rows = re.findall(
        r"<tr><td>2026-03-01T09:0\d:00\+00:00</td><td>([^<]+)</td><td>([^<]+)</td><td>([^<]+)</td>", section
    )
    assert rows == [
        ("ops (cli)", "user-added", "user dana"),
        ("ops (cli)", "token-revoked", "user dana"),
        ("ops (cli)", "source-key-rotated", "source lis.gz01"),
    ]
    assert "account and credential changes are not shown" in render(_inputs())
