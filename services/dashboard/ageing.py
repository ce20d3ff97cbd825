"""The overview's ageing of unresolved findings: how many have been open 0–2, 3–7, 8–30 and more
than 30 days, counted from the triggering event's time (``clocks.AWARENESS_NOTE``), per kind."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Final

from services.dashboard.clocks import AGE_BUCKETS

DAYS_SINCE_EVENT: Final = (
    "max(0, (CAST(strftime('%s', :now) AS INTEGER) - CAST(strftime('%s', occurred_utc) AS INTEGER)) / 86400)"
)
"""Whole days from the triggering event to ``:now``, in integer seconds as ``clocks.whole_days``
counts them (julianday's floating point could put an exact boundary a day early)."""


def _bucket_case() -> str:
    cases = []
    for label, first, last in AGE_BUCKETS:
        upper = "" if last is None else f" AND days <= {int(last)}"
        cases.append(f"WHEN days >= {int(first)}{upper} THEN '{label}'")
    return f"CASE {' '.join(cases)} END"


def ageing(db: sqlite3.Connection, site_scope: str | None, now: dt.datetime) -> list[dict[str, object]]:
    """Each ageing bucket, in order, with its unresolved alerts, deviations and both.

    Args:
        db: the read model.
        site_scope: the only site the user may see (None: every site).
        now: the time to age at (injected).
    """
    scope = " AND site_id = :site_scope" if site_scope is not None else ""
    sql = (
        f"SELECT {_bucket_case()} AS bucket, kind, count(*) AS n FROM ("
        f" SELECT kind, {DAYS_SINCE_EVENT} AS days FROM findings"
        f" WHERE status IN ('open', 'acknowledged') AND superseded_by IS NULL{scope}"
        ") GROUP BY bucket, kind"
    )
    values = {"now": now.astimezone(dt.UTC).isoformat(timespec="seconds"), "site_scope": site_scope}
    counted = {(row["bucket"], row["kind"]): row["n"] for row in db.execute(sql, values).fetchall()}
    rows: list[dict[str, object]] = []
    for label, _, _ in AGE_BUCKETS:
        alerts, deviations = counted.get((label, "alert"), 0), counted.get((label, "deviation"), 0)
        rows.append({"bucket": label, "alerts": alerts, "deviations": deviations, "all": alerts + deviations})
    return rows
