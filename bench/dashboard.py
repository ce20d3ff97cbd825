"""Dashboard read-model benchmark: filtered list queries over 100,000 findings in SQLite.

    .venv/bin/python bench/dashboard.py [--findings 100000] [--repeat 20]    (or: make bench-dashboard)

Builds a read model of synthetic findings (5 sites, every rule id of the catalogue, 40 weeks of
event time) through the same ``ReadModel.apply`` the consumers use, then times what a page asks
for: the list page (rows + total + status × category summary) under several filters and sorts.
Prints the median and the worst of ``--repeat`` runs of each, in milliseconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from events import Topics  # noqa: E402
from protocol.nct06904729 import PROTOCOL  # noqa: E402
from services.dashboard import queries  # noqa: E402
from services.dashboard.store import ReadModel, Record  # noqa: E402

TOPICS = Topics("NCT06904729", "bench")
SITES = ("GZ-01", "GZ-02", "BJ-01", "SH-01", "CD-01")


def _finding(n: int) -> bytes:
    rule = PROTOCOL.rules[n % len(PROTOCOL.rules)]
    occurred = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(minutes=n * 4)
    common = {
        "schema_version": 1,
        "study_id": "NCT06904729",
        "site_id": SITES[n % len(SITES)],
        "participant_id": f"P-{n % 20_000:05d}",
        "rule_id": rule.rule_id,
        "protocol_version": "1.0",
        "term": rule.term,
        "protocol_reference": rule.reference,
        "occurred_at": occurred.isoformat(),
        "trigger_event_ids": [str(uuid.UUID(int=n))],
        "evidence": {"n": n},
    }
    if rule.category is None:
        return json.dumps(common | {"event_type": "SafetyAlertRaised", "alert_id": str(uuid.UUID(int=n))}).encode()
    extra = {
        "event_type": "DeviationRaised",
        "deviation_id": str(uuid.UUID(int=n)),
        "category": rule.category.value,
        "severity": (rule.severity.value if rule.severity else "minor"),
    }
    return json.dumps(common | extra).encode()


def build(path: Path, findings: int) -> float:
    model = ReadModel(path, TOPICS)
    started = time.perf_counter()
    batch: list[Record] = []
    for n in range(findings):
        batch.append(Record(TOPICS.deviations, n % 4, n, 1_767_225_600_000 + n * 1000, _finding(n)))
        if len(batch) == 500:
            model.apply(batch)
            batch.clear()
    if batch:
        model.apply(batch)
    seconds = time.perf_counter() - started
    model.close()
    return seconds


CASES = {
    "default (open alerts first)": {},
    "rule": {"rule": "VISIT-01"},
    "site + status": {"site": "GZ-02", "status": "open"},
    "category + severity, sort by term": {"category": "ELIGIBILITY", "severity": "important", "sort": "term"},
    "event-time range": {"occurred_from": "2026-03-01", "occurred_to": "2026-03-31"},
    "text search on term": {"q": "consent"},
    "participant": {"participant": "P-01234"},
    "page 100 sorted by days open": {"sort": "days_open", "offset": "5000"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--findings", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "read-model.sqlite3"
        seconds = build(path, args.findings)
        print(
            f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
            f"SQLite {__import__('sqlite3').sqlite_version}"
        )
        print(
            f"read model built: {args.findings:,} findings in {seconds:.1f} s "
            f"({args.findings / seconds:,.0f} findings/s, batches of 500)"
        )
        model = ReadModel(path, TOPICS)
        print(
            f"{'list page query (rows + total + summary)':<42} {'rows':>6} {'total':>7} {'median ms':>10} {'max ms':>8}"
        )
        for name, params in CASES.items():
            found, page = queries.FindingFilter.from_params(params), queries.Page.from_params(params)
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                with model.reader() as db:
                    rows = queries.finding_rows(db, found, page, None)
                    total = queries.finding_total(db, found, None)
                    queries.summary(db, found, None)
                times.append((time.perf_counter() - started) * 1000)
            print(f"{name:<42} {len(rows):>6} {total:>7} {statistics.median(times):>10.1f} {max(times):>8.1f}")
        model.close()


if __name__ == "__main__":
    main()
