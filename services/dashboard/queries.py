"""Reading the read model: every filter, sort, page and count happens in SQL, never in the browser.

A ``FindingFilter`` comes from a page's or the API's query parameters; the same filter drives the
list, its total, the status × category summary and the CSV download. Column names in ORDER BY
come from a fixed table, never from the request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass, fields
from typing import Any, Final

SORTABLE: Final = {
    "participant": "participant_id",
    "site": "site_id",
    "rule": "rule_id",
    "kind": "kind",
    "category": "category",
    "severity": "severity",
    "term": "term",
    "reference": "protocol_reference",
    "occurred": "occurred_utc",
    "raised": "raised_at",
    "status": "status",
    "days_open": "days_open",
    "assignee": "assignee",
}
"""Sort keys a request may name, and the column each one means."""

QUEUE_NAMES: Final = ("mine", "unassigned", "overdue")
SERVER_SET: Final = ("overdue_before", "overdue_alerts")
"""Filter fields the dashboard sets itself (a request naming them is not believed)."""
"""The work queues a filter may name (see ``queues``)."""

DEFAULT_LIMIT: Final = 50
MAX_LIMIT: Final = 1_000

DAYS_OPEN: Final = (
    "max(0, (CAST(strftime('%s', CASE WHEN status IN ('resolved', 'closed') THEN status_at ELSE :now END) AS INTEGER)"
    " - CAST(strftime('%s', occurred_utc) AS INTEGER)) / 86400) AS days_open"
)
"""Whole days from the triggering event's time (where clocks start: ``clocks.AWARENESS_NOTE``) to
resolved or closed (to now while still open or acknowledged), as ``clocks.whole_days`` counts."""

COLUMNS: Final = (
    "seq, finding_id, kind, rule_id, category, severity, site_id, participant_id, term, protocol_reference,"
    f" protocol_version, occurred_at, occurred_utc, raised_at, status, status_at, assignee, priority, superseded_by,"
    f" {DAYS_OPEN}"
)


class FilterError(ValueError):
    """A query parameter that cannot be understood: names the parameter and the problem."""


@dataclass(frozen=True)
class FindingFilter:
    """The filters of the findings list; empty strings mean "any"."""

    rule: str = ""
    kind: str = ""
    category: str = ""
    severity: str = ""
    site: str = ""
    participant: str = ""
    status: str = ""
    occurred_from: str = ""
    occurred_to: str = ""
    q: str = ""
    as_of: str = ""
    """The newest finding (``seq``) of the snapshot the user is paging: later arrivals stay out of
    the list, its total, its summary and its pager until the user asks for them."""
    assignee: str = ""
    queue: str = ""
    """A work queue (``queues.QUEUES``): unresolved findings assigned to ``assignee`` (mine),
    assigned to nobody (unassigned), or whose event is older than ``overdue_before`` (overdue)."""
    overdue_before: str = ""
    """Set by the dashboard from the study's setting, never from a request (``queues``)."""
    overdue_alerts: tuple[tuple[str, str], ...] = ()
    """(rule id, event time before which its open alert is overdue) for each alert rule with a
    reporting clock; set by the dashboard from the protocol's clocks, never from a request."""

    @classmethod
    def from_params(cls, params: dict[str, str]) -> FindingFilter:
        """The filter named by query parameters; unknown parameters are ignored.

        Raises:
            FilterError: a date that is not YYYY-MM-DD, or a kind/status outside their values.
        """
        given = {f.name: params.get(f.name, "").strip()[:200] for f in fields(cls) if f.name not in SERVER_SET}
        found = cls(**given)  # type: ignore[arg-type]  # every field a request may set is a string
        for name in ("occurred_from", "occurred_to"):
            value = getattr(found, name)
            if value:
                try:
                    dt.date.fromisoformat(value)
                except ValueError:
                    raise FilterError(f"{name}={value[:40]!r}: expected a date YYYY-MM-DD") from None
        if found.as_of and not (found.as_of.isdigit() and int(found.as_of) < 2**62):
            raise FilterError(f"as_of={found.as_of[:40]!r}: expected a finding sequence number (a whole number)")
        if found.kind not in ("", "deviation", "alert"):
            raise FilterError(f"kind={found.kind[:40]!r}: expected deviation or alert")
        if found.status not in ("", "open", "acknowledged", "resolved", "closed", "unresolved"):
            raise FilterError(f"status={found.status[:40]!r}: expected open, acknowledged, resolved or closed")
        if found.queue not in ("", *QUEUE_NAMES):
            raise FilterError(f"queue={found.queue[:40]!r}: expected one of {', '.join(QUEUE_NAMES)}")
        return found

    def params(self) -> dict[str, str]:
        """The non-empty filters, as query parameters (for links that keep the filter)."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) and f.name not in SERVER_SET
        }

    def _overdue(self, values: dict[str, Any]) -> str:
        # An alert whose rule has a reporting clock is overdue past its due time; any other
        # finding once its event is older than the study's overdue days.
        values["overdue_before"] = self.overdue_before or "0000"  # no cutoff known: nothing is overdue
        clocked = []
        for n, (rule_id, cut) in enumerate(self.overdue_alerts):
            values[f"clock_rule_{n}"], values[f"clock_cut_{n}"] = rule_id, cut
            clocked.append(f"(kind = 'alert' AND rule_id = :clock_rule_{n} AND occurred_utc < :clock_cut_{n})")
        if not clocked:
            return "occurred_utc < :overdue_before"
        rules = ", ".join(f":clock_rule_{n}" for n in range(len(clocked)))
        unclocked = f"(NOT (kind = 'alert' AND rule_id IN ({rules})) AND occurred_utc < :overdue_before)"
        return "(" + " OR ".join([unclocked, *clocked]) + ")"

    def where(self, site_scope: str | None) -> tuple[str, dict[str, Any]]:
        """The SQL condition and its parameters; ``site_scope`` limits a site user to their site."""
        clauses, values = [], dict[str, Any]()
        for name, column in (
            ("rule", "rule_id"),
            ("kind", "kind"),
            ("category", "category"),
            ("severity", "severity"),
            ("site", "site_id"),
            ("participant", "participant_id"),
        ):
            if getattr(self, name):
                clauses.append(f"{column} = :{name}")
                values[name] = getattr(self, name)
        # A superseded finding (a lab correction: it no longer holds) is never open.
        if self.status == "unresolved":
            clauses.append("status IN ('open', 'acknowledged') AND superseded_by IS NULL")
        elif self.status:
            clauses.append("status = :status" + (" AND superseded_by IS NULL" if self.status == "open" else ""))
            values["status"] = self.status
        if self.occurred_from:
            clauses.append("occurred_utc >= :occurred_from")
            values["occurred_from"] = self.occurred_from
        if self.occurred_to:
            clauses.append("occurred_utc < :occurred_to_next")
            values["occurred_to_next"] = (dt.date.fromisoformat(self.occurred_to) + dt.timedelta(days=1)).isoformat()
        if self.assignee:
            clauses.append("assignee = :assignee")
            values["assignee"] = self.assignee
        if self.queue:
            clauses.append("status IN ('open', 'acknowledged') AND superseded_by IS NULL")
        if self.queue == "unassigned":
            clauses.append("assignee IS NULL")
        if self.queue == "overdue":
            clauses.append(self._overdue(values))
        if self.q:
            clauses.append("term LIKE :q ESCAPE '\\'")
            values["q"] = "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if self.as_of:
            clauses.append("seq <= :as_of")
            values["as_of"] = int(self.as_of)
        if site_scope is not None:
            clauses.append("site_id = :site_scope")
            values["site_scope"] = site_scope
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", values


@dataclass(frozen=True)
class Page:
    """Which slice of the list, in which order."""

    sort: str = ""
    descending: bool = True
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    after_seq: int = 0
    alerts_first: bool = True
    """Open safety alerts before everything else (the default order's; the user may turn it off)."""

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Page:
        """Raises: FilterError for an unknown sort key or a limit/offset that is not a small integer."""
        sort = params.get("sort", "")
        if sort and sort not in SORTABLE:
            raise FilterError(f"sort={sort[:40]!r}: expected one of {', '.join(SORTABLE)}")
        numbers = {}
        for name, default, top in (("limit", DEFAULT_LIMIT, MAX_LIMIT), ("offset", 0, 10**9), ("after_seq", 0, 2**62)):
            raw = params.get(name, "") or str(default)
            if not raw.isdigit() or int(raw) > top:
                raise FilterError(f"{name}={raw[:40]!r}: expected a whole number from 0 to {top}")
            numbers[name] = int(raw)
        first = params.get("alerts_first", "")
        if first not in ("", "0", "1"):
            raise FilterError(f"alerts_first={first[:40]!r}: expected 1 (open safety alerts first) or 0")
        return cls(
            sort,
            params.get("order", "desc") != "asc",
            max(1, numbers["limit"]),
            numbers["offset"],
            numbers["after_seq"],
            # On by default in the default order; a column sort is the user's order unless asked.
            first == "1" if first else not sort,
        )

    def order_by(self) -> str:
        first = "priority, " if self.alerts_first else ""
        if not self.sort:
            return f" ORDER BY {first}raised_at DESC, seq DESC"
        direction = "DESC" if self.descending else "ASC"
        return f" ORDER BY {first}{SORTABLE[self.sort]} {direction} NULLS LAST, seq {direction}"

    def params(self) -> dict[str, str]:
        """The sort and page size as query parameters (for links that keep them); defaults left out."""
        kept = {"sort": self.sort, "order": "desc" if self.descending else "asc"} if self.sort else {}
        if self.alerts_first != (not self.sort):
            kept["alerts_first"] = "1" if self.alerts_first else "0"
        if self.limit != DEFAULT_LIMIT:
            kept["limit"] = str(self.limit)
        return kept


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def finding_rows(
    db: sqlite3.Connection, found: FindingFilter, page: Page, site_scope: str | None
) -> list[dict[str, Any]]:
    """One page of findings under the filter."""
    where, values = found.where(site_scope)
    if page.after_seq:
        where += (" AND " if where else " WHERE ") + "seq > :after_seq"
        values["after_seq"] = page.after_seq
    sql = f"SELECT {COLUMNS} FROM findings{where}{page.order_by()} LIMIT :limit OFFSET :offset"
    rows = db.execute(sql, values | {"now": _now(), "limit": page.limit, "offset": page.offset})
    return [dict(row) for row in rows.fetchall()]


def finding_total(db: sqlite3.Connection, found: FindingFilter, site_scope: str | None) -> int:
    where, values = found.where(site_scope)
    return int(db.execute(f"SELECT count(*) FROM findings{where}", values).fetchone()[0])


def summary(db: sqlite3.Connection, found: FindingFilter, site_scope: str | None) -> dict[str, dict[str, int]]:
    """Counts of findings by category, then status, under the same filter as the list."""
    where, values = found.where(site_scope)
    table: dict[str, dict[str, int]] = {}
    status = "CASE WHEN superseded_by IS NULL THEN status ELSE 'superseded' END"
    sql = (
        f"SELECT category, {status} AS status, count(*) AS n FROM findings{where}"
        " GROUP BY category, 2 ORDER BY category"
    )
    for row in db.execute(sql, values).fetchall():
        table.setdefault(row["category"], {})[row["status"]] = row["n"]
    return table


def arrived(db: sqlite3.Connection, found: FindingFilter, site_scope: str | None) -> int:
    """Findings under the filter that came after its snapshot (``as_of``): the "N new" of the list."""
    if not found.as_of:
        return 0
    where, values = dataclasses.replace(found, as_of="").where(site_scope)
    where += (" AND " if where else " WHERE ") + "seq > :as_of"
    return int(db.execute(f"SELECT count(*) FROM findings{where}", values | {"as_of": int(found.as_of)}).fetchone()[0])


def newest_seq(db: sqlite3.Connection, site_scope: str | None) -> int:
    """The newest finding's sequence number the user may see (others' activity stays theirs)."""
    where, values = ("WHERE site_id = :s", {"s": site_scope}) if site_scope is not None else ("", {})
    return int(db.execute(f"SELECT coalesce(max(seq), 0) FROM findings {where}", values).fetchone()[0])


def distinct(db: sqlite3.Connection, column: str, site_scope: str | None) -> list[str]:
    """The values present in one filterable column (for the filter drop-downs)."""
    if column not in ("rule_id", "category", "severity", "site_id"):
        raise ValueError(column)
    where, values = ("WHERE site_id = :s", {"s": site_scope}) if site_scope is not None else ("", {})
    sql = f"SELECT DISTINCT {column} FROM findings {where} ORDER BY {column}"
    return [row[0] for row in db.execute(sql, values).fetchall() if row[0] is not None]


def finding(db: sqlite3.Connection, finding_id: str) -> dict[str, Any] | None:
    """Every field of one finding, with its full body and its review history."""
    row = db.execute(
        f"SELECT {COLUMNS}, body FROM findings JOIN finding_bodies USING (finding_id) WHERE finding_id = :id",
        {"id": finding_id, "now": _now()},
    )
    found = row.fetchone()
    if found is None:
        return None
    result = dict(found)
    result["body"] = json.loads(result["body"])
    result["reviews"] = [
        dict(review)
        for review in db.execute(
            "SELECT review_id, action, actor, role, reviewed_at, comment, reason, assignee, outcome FROM reviews"
            " WHERE finding_id = ? ORDER BY position",
            (finding_id,),
        ).fetchall()
    ]
    return result


def events_of(db: sqlite3.Connection, participant_id: str) -> list[dict[str, Any]]:
    """A participant's events (ClockTicked excluded) in event-time order, bodies parsed."""
    rows = db.execute(
        "SELECT event_id, event_type, occurred_utc, site_id, body FROM events WHERE participant_id = ?"
        " ORDER BY occurred_utc, position",
        (participant_id,),
    ).fetchall()
    return [dict(row) | {"body": json.loads(row["body"])} for row in rows]


def registered_site(db: sqlite3.Connection, participant_id: str) -> str | None:
    """The site of the participant's first registration, or None when the read model has none."""
    row = db.execute("SELECT site_id FROM participants WHERE participant_id = ?", (participant_id,)).fetchone()
    return None if row is None else str(row["site_id"])


def events_by_id(db: sqlite3.Connection, event_ids: list[str]) -> list[dict[str, Any]]:
    marks = ", ".join("?" * len(event_ids))
    rows = db.execute(f"SELECT event_id, event_type, body FROM events WHERE event_id IN ({marks})", event_ids)
    found = {row["event_id"]: json.loads(row["body"]) for row in rows.fetchall()}
    return [found[event_id] for event_id in event_ids if event_id in found]


def findings_of(db: sqlite3.Connection, participant_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        f"SELECT {COLUMNS} FROM findings WHERE participant_id = :p ORDER BY occurred_utc, seq",
        {"p": participant_id, "now": _now()},
    )
    return [dict(row) for row in rows.fetchall()]


def counts_by(db: sqlite3.Connection, column: str, site_scope: str | None) -> list[tuple[str, int, int]]:
    """(value, all findings, unresolved findings) per site or per rule."""
    if column not in ("site_id", "rule_id"):
        raise ValueError(column)
    where, values = ("WHERE site_id = :s", {"s": site_scope}) if site_scope is not None else ("", {})
    sql = (
        f"SELECT {column} AS value, count(*) AS n, sum(status IN ('open', 'acknowledged') AND superseded_by IS NULL)"
        " AS unresolved"
        f" FROM findings {where} GROUP BY {column} ORDER BY n DESC, {column}"
    )
    return [(row["value"], row["n"], row["unresolved"]) for row in db.execute(sql, values).fetchall()]


def per_week(db: sqlite3.Connection, site_scope: str | None) -> list[tuple[dt.date, str, int]]:
    """(Monday of the ISO week of the event time, category, findings)."""
    where, values = ("WHERE site_id = :s", {"s": site_scope}) if site_scope is not None else ("", {})
    sql = (
        "SELECT date(occurred_utc, '-' || ((CAST(strftime('%w', occurred_utc) AS INTEGER) + 6) % 7) || ' days')"
        f" AS week, category, count(*) AS n FROM findings {where} GROUP BY week, category ORDER BY week, category"
    )
    return [(dt.date.fromisoformat(row["week"]), row["category"], row["n"]) for row in db.execute(sql, values)]


def dead_letters(db: sqlite3.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = db.execute('SELECT * FROM dead_letters ORDER BY partition, "offset" DESC LIMIT ?', (limit,)).fetchall()
    return [dict(row) for row in rows]


def dead_letter_count(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT count(*) FROM dead_letters").fetchone()[0])


def meta(db: sqlite3.Connection, name: str) -> str | None:
    row = db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])
