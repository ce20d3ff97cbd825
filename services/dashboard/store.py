"""The dashboard's read model: an embedded SQLite database, derived from the topics and disposable.

Each batch of consumed records is written with the offsets it advances in one SQLite
transaction, so a restart resumes exactly where it stopped (a record below the stored offset is
skipped), and a deleted file is rebuilt from offset 0 of every topic. Nothing here is a source of
truth: findings come from the deviations topic, review statuses are the fold of the
finding-reviews topic, timelines come from participant-events, account changes from the access log.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from contracts import (
    ContractError,
    DeviationRaised,
    FindingSuperseded,
    ReviewStatus,
    SafetyAlertRaised,
    parse_event,
)
from events import Topics
from services.dashboard.access import fold_access_change
from services.dashboard.review_fold import keep_review, refold, refold_reviews_by, status_priority, utc_text
from services.dashboard.schema import SCHEMA, SCHEMA_VERSION

log = structlog.get_logger("trialguard.dashboard.store")

ALERT_CATEGORY = "SAFETY ALERT"
"""The category shown for safety alerts, beside the DVCAT values of deviations."""

DEAD_LETTER_BYTES_KEPT = 2_048
"""The original bytes of a dead letter kept for the operations page (the topic has them all)."""


@dataclass(frozen=True)
class Record:
    """One consumed Kafka record, as the store needs it."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass
class Applied:
    """What one batch changed, for the live page updates."""

    study: str = ""
    """The study of the read model that applied the batch: pages of other studies hear nothing."""
    findings: list[str] = field(default_factory=list)
    reviews: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    """The registered site of each finding raised, superseded or reviewed (findings first, then
    reviews, in order): a site user's page hears only of its own site's."""
    events: int = 0
    dead_letters: int = 0
    access_changes: int = 0
    skipped: int = 0

    def __bool__(self) -> bool:
        return bool(self.findings or self.reviews or self.events or self.dead_letters or self.access_changes)


def _kafka_time(timestamp_ms: int) -> str:
    return utc_text(dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.UTC))


def _position(record: Record) -> int:
    # One participant's records share a partition, so the offset orders them; the partition in
    # the high bits keeps positions unique across partitions.
    return (record.partition << 40) | record.offset


class ReadModel:
    """The SQLite read model at ``path``: one writer (the consumers), many readers (the pages).

    Args:
        path: the database file; created (with its directory) when missing.
        topics: the study's topics, to tell records apart.
    """

    def __init__(self, path: Path, topics: Topics) -> None:
        self.path = path
        self.topics = topics
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._writer = self._connect()
        self._migrate()
        self._findings = int(self._writer.execute("SELECT count(*) FROM findings").fetchone()[0])
        self._analyzed_at = max(self._findings, 500)

    def _connect(self) -> sqlite3.Connection:
        # Findings, timelines and lab values of every site: readable by the service's user only
        # (SQLite gives its -wal and -shm files the same mode), whatever the umask or folder.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(self.path, 0o600)
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        connection.execute("PRAGMA synchronous=NORMAL")  # a lost last batch is re-read from Kafka
        connection.execute("PRAGMA busy_timeout=5000")
        return connection

    def _migrate(self) -> None:
        with self._lock:
            found = self._writer.execute(
                "SELECT value FROM meta WHERE name='schema'"
                if self._table_exists("meta")
                else "SELECT NULL AS value WHERE 0"
            ).fetchone()
            if found is not None and found["value"] != SCHEMA_VERSION:
                log.info("read_model_rebuilt", reason="schema changed", was=found["value"], now=SCHEMA_VERSION)
                for (name,) in self._writer.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    if not name.startswith("sqlite_"):
                        self._writer.execute(f'DROP TABLE "{name}"')
            self._writer.executescript(SCHEMA)
            self._writer.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))

    def check_origin(self, cluster_id: str, namespace: str) -> bool:
        """Keep the read model only if it was read from this Kafka cluster and topic namespace.

        Its offsets mean something only on the cluster they were read from: on another one (a new
        broker, other ports, a formatted data folder) they would skip records the model never saw.
        So a model read elsewhere, or before the origin was recorded, is dropped and rebuilt from
        offset 0 (logged); the origin is recorded either way.

        Returns:
            True when the read model was dropped.
        """
        with self._lock:
            db = self._writer
            stored = dict(
                db.execute("SELECT name, value FROM meta WHERE name IN ('kafka_cluster_id', 'topic_namespace')")
            )
            has_offsets = db.execute("SELECT 1 FROM offsets LIMIT 1").fetchone() is not None
            now = {"kafka_cluster_id": cluster_id, "topic_namespace": namespace}
            rebuild = has_offsets and stored != now
            if rebuild:
                log.warning(
                    "read_model_rebuilt",
                    reason="another Kafka cluster or topic namespace" if stored else "origin not recorded",
                    was_cluster=stored.get("kafka_cluster_id"),
                    was_namespace=stored.get("topic_namespace"),
                    cluster=cluster_id,
                    namespace=namespace,
                )
                for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'").fetchall():
                    if not name.startswith("sqlite_"):
                        db.execute(f'DROP TABLE "{name}"')
                db.executescript(SCHEMA)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                self._findings = 0
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(now.items()))
        return rebuild

    def _table_exists(self, name: str) -> bool:
        row = self._writer.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
        return row is not None

    @contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection for one request (pages run in worker threads)."""
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA busy_timeout=5000")
        try:
            yield connection
        finally:
            connection.close()

    def close(self) -> None:
        with self._lock:
            self._writer.close()

    def offsets(self, topic: str) -> dict[int, int]:
        """The next offset to read of each partition of ``topic`` (absent: read from 0)."""
        with self._lock:
            rows = self._writer.execute("SELECT partition, next_offset FROM offsets WHERE topic=?", (topic,))
            return {row["partition"]: row["next_offset"] for row in rows.fetchall()}

    def apply(self, records: Sequence[Record]) -> Applied:
        """Write a batch of records and the offsets they advance, in one transaction."""
        applied = Applied(study=self.topics.study_id)
        with self._lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                next_offsets = {
                    (row["topic"], row["partition"]): row["next_offset"]
                    for row in db.execute("SELECT topic, partition, next_offset FROM offsets").fetchall()
                }
                for record in records:
                    key = (record.topic, record.partition)
                    if record.offset < next_offsets.get(key, 0):
                        applied.skipped += 1  # already in the read model: a re-delivery after a restart
                        continue
                    self._apply_one(db, record, applied)
                    next_offsets[key] = record.offset + 1
                    db.execute("INSERT OR REPLACE INTO offsets VALUES (?, ?, ?)", (*key, record.offset + 1))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            self._findings += len(applied.findings)
            if self._findings >= self._analyzed_at * 2:
                # The planner picks the selective index (site, rule…) only with fresh statistics;
                # re-analyzing at each doubling costs O(n) in all.
                db.execute("ANALYZE")
                self._analyzed_at = self._findings
        return applied

    def _apply_one(self, db: sqlite3.Connection, record: Record, applied: Applied) -> None:
        topics = self.topics
        if record.topic == topics.deviations:
            self._finding(db, record, applied)
        elif record.topic == topics.finding_reviews:
            self._review(db, record, applied)
        elif record.topic == topics.participant_events:
            self._event(db, record, applied)
        elif record.topic == topics.dead_letter:
            self._dead_letter(db, record)
            applied.dead_letters += 1
        elif record.topic == topics.access_log:
            change = fold_access_change(db, record.value, _position(record))
            if change is not None:
                applied.access_changes += 1
                if change.subject_kind == "user":  # a review read before its actor's change is judged again
                    refold_reviews_by(db, change.subject)

    def _finding(self, db: sqlite3.Connection, record: Record, applied: Applied) -> None:
        finding = _parse_finding(record)
        if finding is None:
            return
        if isinstance(finding, FindingSuperseded):
            self._superseded(db, finding, applied)
            return
        if isinstance(finding, DeviationRaised):
            kind, finding_id, category, severity = (
                "deviation",
                str(finding.deviation_id),
                finding.category.value,
                finding.severity.value,
            )
        else:
            kind, finding_id, category, severity = "alert", str(finding.alert_id), ALERT_CATEGORY, None
        inserted = db.execute(
            "INSERT OR IGNORE INTO findings (finding_id, kind, rule_id, category, severity, site_id, participant_id,"
            " term, protocol_reference, protocol_version, occurred_at, occurred_utc, raised_at, priority)"
            " VALUES (?, ?, ?, ?, ?, COALESCE((SELECT site_id FROM participants WHERE participant_id=?), ?),"
            " ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                finding_id,
                kind,
                finding.rule_id,
                category,
                severity,
                finding.participant_id,
                finding.site_id,
                finding.participant_id,
                finding.term,
                finding.protocol_reference,
                finding.protocol_version,
                finding.occurred_at.isoformat(),
                utc_text(finding.occurred_at),
                _kafka_time(record.timestamp_ms),
                status_priority(kind, ReviewStatus.OPEN),
            ),
        ).rowcount
        if inserted:
            # The full finding lives apart: list queries scan narrow rows.
            db.execute("INSERT INTO finding_bodies VALUES (?, ?)", (finding_id, finding.model_dump_json()))
            applied.findings.append(finding_id)
            applied.sites.append(_site_of(db, finding_id))
            refold(db, finding_id)  # reviews may have been read before their finding

    def _superseded(self, db: sqlite3.Connection, superseded: FindingSuperseded, applied: Applied) -> None:
        """A lab correction means the finding no longer holds: marked, never edited or deleted.

        Its key is the participant id, so it comes after its finding on the same partition; the
        first supersession is kept (a finding raised again gets a new id).
        """
        finding_id = str(superseded.finding_id)
        updated = db.execute(
            "UPDATE findings SET superseded_by=?, priority=1 WHERE finding_id=? AND superseded_by IS NULL",
            (str(superseded.superseded_by_event_id), finding_id),
        ).rowcount
        if updated:
            applied.findings.append(finding_id)
            applied.sites.append(_site_of(db, finding_id))

    def _review(self, db: sqlite3.Connection, record: Record, applied: Applied) -> None:
        review = keep_review(db, record.value, _position(record), (record.partition, record.offset))
        if review is not None:
            applied.reviews.append(str(review.review_id))
            applied.sites.append(_site_of(db, str(review.finding_id)) or review.site_id)
            refold(db, str(review.finding_id))

    def _event(self, db: sqlite3.Connection, record: Record, applied: Applied) -> None:
        try:
            event = parse_event(record.value or b"")
        except ContractError:
            return  # the rules service dead-letters it; the operations page shows it from there
        occurred = utc_text(event.occurred_at)
        db.execute(
            "INSERT INTO meta VALUES ('newest_event_time', ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value"
            " WHERE excluded.value > meta.value",
            (occurred,),
        )
        if event.event_type == "ClockTicked":
            return  # a watermark: it moves the newest event time, it draws nothing
        if event.event_type == "ParticipantRegistered":
            self._registered(db, event.participant_id, event.site_id)
        inserted = db.execute(
            "INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(event.event_id),
                event.participant_id,
                event.site_id,
                event.event_type,
                occurred,
                _position(record),
                (record.value or b"").decode(),
            ),
        ).rowcount
        applied.events += inserted

    def _registered(self, db: sqlite3.Connection, participant_id: str, site_id: str) -> None:
        """A participant belongs to the site of its first registration: what every site user sees
        of it is scoped by that site, never by the site an event or a finding claims (a forged or
        mistaken event of another site must not show it, or hide it, elsewhere). Findings read
        before the registration (another topic) are brought under it now."""
        if db.execute("INSERT OR IGNORE INTO participants VALUES (?, ?)", (participant_id, site_id)).rowcount:
            db.execute(
                "UPDATE findings SET site_id=? WHERE participant_id=? AND site_id<>?",
                (site_id, participant_id, site_id),
            )

    def _dead_letter(self, db: sqlite3.Connection, record: Record) -> None:
        headers = {name: value.decode("utf-8", "replace") for name, value in record.headers}
        source = "{}[{}]@{}".format(
            headers.get("trialguard.source.topic", "?"),
            headers.get("trialguard.source.partition", "?"),
            headers.get("trialguard.source.offset", "?"),
        )
        value = record.value or b""
        db.execute(
            "INSERT OR IGNORE INTO dead_letters VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record.partition,
                record.offset,
                _kafka_time(record.timestamp_ms),
                headers.get("trialguard.error", "(no reason given)"),
                source,
                value[:DEAD_LETTER_BYTES_KEPT],
                len(value),
            ),
        )

    def meta(self, name: str) -> str | None:
        with self._lock:
            row = self._writer.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
            return None if row is None else str(row["value"])


def _site_of(db: sqlite3.Connection, finding_id: str) -> str:
    """The registered site a finding is shown under ("" while the finding is not read yet)."""
    row = db.execute("SELECT site_id FROM findings WHERE finding_id=?", (finding_id,)).fetchone()
    return "" if row is None else str(row["site_id"])


def _parse_finding(record: Record) -> DeviationRaised | SafetyAlertRaised | FindingSuperseded | None:
    models: dict[str, type[DeviationRaised | SafetyAlertRaised | FindingSuperseded]] = {
        "SafetyAlertRaised": SafetyAlertRaised,
        "FindingSuperseded": FindingSuperseded,
    }
    try:
        document: Any = json.loads(record.value or b"")
        kind = document.get("event_type")
        return models.get(kind if isinstance(kind, str) else "", DeviationRaised).model_validate(document)
    except (ValueError, AttributeError, ValidationError) as error:
        log.warning("finding_unreadable", partition=record.partition, offset=record.offset, error=type(error).__name__)
        return None
