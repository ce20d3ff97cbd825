"""The audit report: one self-contained HTML file that prints well.

Pure: the caller gathers what the report states (versions, the log's extent, the verification
and diff results, the findings, their review statuses) into a ``ReportInputs``; ``render`` turns
it into HTML. Every value is escaped by Jinja2; the one chart is matplotlib's SVG (its text
escaped by matplotlib), inlined so that the file needs nothing else.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from contracts import AccessChanged
from services.presentation.charts import findings_per_week_svg
from services.presentation.explanation import explain_published

TEMPLATES = Path(__file__).parent / "templates"
ALERT_CATEGORY = "SAFETY ALERT"


@dataclass(frozen=True)
class VersionRow:
    """A protocol version in force over the log."""

    version: str
    effective: str
    sites: str
    fingerprint: str


@dataclass(frozen=True)
class PartitionExtent:
    """What the log holds in one partition."""

    partition: int
    first_offset: int
    last_offset: int
    records: int
    first_event_time: str
    last_event_time: str


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a check (the chain verification, the diff): passed, and what it said."""

    passed: bool | None
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReportInputs:
    """Everything the report states, gathered by the caller."""

    study_id: str
    generated_at: dt.datetime
    source: str
    versions: tuple[VersionRow, ...]
    extent: tuple[PartitionExtent, ...]
    verification: CheckResult
    diff: CheckResult
    findings: tuple[dict[str, Any], ...]
    review_status: dict[str, str] | None = None
    """Finding id → review status, when the dashboard's review topic exists."""
    access_changes: tuple[AccessChanged, ...] | None = None
    """Every change to users, tokens and sources, in log order, when the access-log topic exists."""
    notes: tuple[str, ...] = field(default=())


def _counts(findings: tuple[dict[str, Any], ...], key: str) -> list[tuple[str, int]]:
    counted = Counter(str(f.get(key) or "—") for f in findings)
    return sorted(counted.items(), key=lambda item: (-item[1], item[0]))


def _week_rows(findings: tuple[dict[str, Any], ...]) -> list[tuple[dt.date, str, int]]:
    counted: Counter[tuple[dt.date, str]] = Counter()
    for finding in findings:
        day = dt.datetime.fromisoformat(str(finding["occurred_at"])).date()
        category = str(finding.get("category") or ALERT_CATEGORY)
        counted[(day - dt.timedelta(days=day.weekday()), category)] += 1
    return [(week, category, n) for (week, category), n in sorted(counted.items())]


def render(inputs: ReportInputs) -> str:
    """The report as one HTML document."""
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), keep_trailing_newline=True
    )
    findings = inputs.findings
    deviations = tuple(f for f in findings if f.get("event_type", "DeviationRaised") == "DeviationRaised")
    important = sorted(
        (f for f in deviations if f.get("severity") == "important"),
        key=lambda f: (str(f["occurred_at"]), str(f["participant_id"]), str(f["rule_id"])),
    )
    chart = findings_per_week_svg(_week_rows(findings), title="Findings per week (event time), by category")
    return environment.get_template("report.html").render(
        r=inputs,
        total=len(findings),
        deviations=len(deviations),
        alerts=len(findings) - len(deviations),
        by_rule=_counts(findings, "rule_id"),
        by_category=_counts(tuple(f | {"category": f.get("category") or ALERT_CATEGORY} for f in findings), "category"),
        by_severity=_counts(deviations, "severity"),
        by_site=_counts(findings, "site_id"),
        important=important,
        why_of=lambda finding: explain_published(finding).text,
        chart=Markup(chart),  # noqa: S704 - matplotlib's SVG, its text escaped
    )
