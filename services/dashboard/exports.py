"""The findings list as a file: CSV, or an Excel workbook with each finding's review history.

The rows are the list's: the same filter, snapshot (``as_of``), sort and site scope as the page
(``queries.finding_rows``), so a site user's export holds their site's findings only. Each row adds
the finding's why (``explaining.explanation_of``, the sentence the detail page and the API show),
its status, assignee, the last reason given and the comments; the history is the review trail,
one line per review, and is left out for a role that may not read it. A cell that starts like a
formula is written as text: a spreadsheet shows it, it does not run it.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import xlsxwriter

from services.dashboard import queries
from services.dashboard.explaining import explanation_of

MAX_ROWS: Final = 100_000

COLUMNS: Final = (
    ("finding_id", "Finding id"),
    ("participant_id", "Participant"),
    ("site_id", "Site"),
    ("rule_id", "Rule"),
    ("kind", "Kind"),
    ("category", "Category"),
    ("severity", "Severity"),
    ("term", "Term"),
    ("explanation", "Why"),
    ("protocol_reference", "Protocol reference"),
    ("protocol_version", "Protocol version"),
    ("occurred_at", "Event time"),
    ("raised_at", "Raised at (UTC)"),
    ("status", "Status"),
    ("days_open", "Days open"),
    ("assignee", "Assignee"),
    ("last_reason", "Last reason"),
    ("comments", "Comments"),
)
"""The list's columns: (key, heading). The CSV's header row is the keys (stable for scripts)."""

HISTORY_COLUMNS: Final = (
    ("finding_id", "Finding id"),
    ("reviewed_at", "When (UTC)"),
    ("actor", "Who"),
    ("role", "Role"),
    ("action", "Action"),
    ("assignee", "Assignee"),
    ("reason", "Reason"),
    ("comment", "Comment"),
    ("outcome", "Not applied because"),
)


@dataclass(frozen=True)
class ExportRows:
    """What an export holds: the list's rows and, when the user may read it, their history."""

    rows: list[dict[str, Any]]
    history: list[dict[str, Any]]
    with_history: bool


def export_rows(
    db: sqlite3.Connection,
    found: queries.FindingFilter,
    page: queries.Page,
    site_scope: str | None,
    *,
    with_history: bool,
) -> ExportRows:
    """Every row of the filtered list (up to ``MAX_ROWS``), with its why and its reviews."""
    every = dataclasses.replace(page, limit=MAX_ROWS, offset=0, after_seq=0)
    listed = queries.finding_rows(db, found, every, site_scope)
    rows, history = [], []
    for row in listed:
        body = db.execute("SELECT body FROM finding_bodies WHERE finding_id = ?", (row["finding_id"],)).fetchone()
        explanation = explanation_of(db, json.loads(body["body"])).text if body is not None else ""
        reviews = _reviews(db, row["finding_id"]) if with_history else []
        reasons = [r["reason"] for r in reviews if r["reason"] and r["outcome"] is None]
        comments = [f"{r['reviewed_at']} {r['actor']}: {r['comment']}" for r in reviews if r["comment"]]
        rows.append(
            row
            | {
                "explanation": explanation,
                "last_reason": reasons[-1] if reasons else "",
                "comments": "\n".join(comments),
            }
        )
        history += [{"finding_id": row["finding_id"]} | r for r in reviews]
    return ExportRows(rows, history, with_history)


def _reviews(db: sqlite3.Connection, finding_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT reviewed_at, actor, role, action, assignee, reason, comment, outcome FROM reviews"
        " WHERE finding_id = ? ORDER BY position",
        (finding_id,),
    ).fetchall()
    return [dict(row) for row in rows]


def not_a_formula(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, made text (a leading ')."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_lines(exported: ExportRows) -> Iterator[str]:
    """The list as CSV, one line at a time; the history in a last column, one review a line."""
    keys = [key for key, _ in COLUMNS] + (["history"] if exported.with_history else [])
    by_finding: dict[str, list[str]] = {}
    for review in exported.history:
        by_finding.setdefault(review["finding_id"], []).append(_history_line(review))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(keys)
    for row in exported.rows:
        cells = [row.get(key) for key, _ in COLUMNS]
        if exported.with_history:
            cells.append("\n".join(by_finding.get(row["finding_id"], [])))
        writer.writerow(not_a_formula(cell) for cell in cells)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    yield out.getvalue()


def _history_line(review: dict[str, Any]) -> str:
    said = [f"{review['reviewed_at']} {review['actor']} ({review['role']}) {review['action']}"]
    said += [f"{name}: {review[name]}" for name in ("assignee", "reason", "comment") if review[name]]
    if review["outcome"]:
        said.append(f"not applied: {review['outcome']}")
    return "; ".join(said)


def workbook(exported: ExportRows) -> bytes:
    """The list as an Excel workbook: a "Findings" sheet and, when allowed, a "History" sheet."""
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    heading = book.add_format({"bold": True})
    wrapped = book.add_format({"text_wrap": True, "valign": "top"})
    _sheet(book, "Findings", COLUMNS, exported.rows, heading, wrapped)
    if exported.with_history:
        _sheet(book, "History", HISTORY_COLUMNS, exported.history, heading, wrapped)
    book.close()
    return buffer.getvalue()


def _sheet(
    book: Any,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[dict[str, Any]],
    heading: Any,
    wrapped: Any,
) -> None:
    sheet = book.add_worksheet(name)
    for column, (_, title) in enumerate(columns):
        sheet.write_string(0, column, title, heading)
    for line, row in enumerate(rows, start=1):
        for column, (key, _) in enumerate(columns):
            value = row.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                sheet.write_number(line, column, value)
            elif value is not None:
                # Written as a string, never a formula (strings_to_formulas is off as well).
                sheet.write_string(line, column, str(value), wrapped if key in ("explanation", "comments") else None)
    sheet.freeze_panes(1, 0)
    sheet.autofilter(0, 0, max(len(rows), 1), len(columns) - 1)
