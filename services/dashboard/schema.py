"""The read model's tables and indexes (SQLite). Derived data: a change bumps the version and the
file is rebuilt from the topics."""

from typing import Final

SCHEMA_VERSION: Final = "6"
"""Bumped whenever the tables change: an older file is dropped and rebuilt from the topics."""

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS findings (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    finding_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    category TEXT NOT NULL,
    severity TEXT,
    site_id TEXT NOT NULL, -- the participant's registered site (scope); the finding's own is in its body
    participant_id TEXT NOT NULL,
    term TEXT NOT NULL,
    protocol_reference TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    occurred_utc TEXT NOT NULL,
    raised_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    status_at TEXT,
    assignee TEXT,
    priority INTEGER NOT NULL,
    superseded_by TEXT);
CREATE TABLE IF NOT EXISTS finding_bodies (finding_id TEXT PRIMARY KEY, body TEXT NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS findings_default ON findings (priority, raised_at DESC, seq DESC);
CREATE INDEX IF NOT EXISTS findings_rule ON findings (rule_id, raised_at);
CREATE INDEX IF NOT EXISTS findings_kind ON findings (kind, raised_at);
CREATE INDEX IF NOT EXISTS findings_category ON findings (category, raised_at);
CREATE INDEX IF NOT EXISTS findings_severity ON findings (severity, raised_at);
CREATE INDEX IF NOT EXISTS findings_site ON findings (site_id, raised_at);
CREATE INDEX IF NOT EXISTS findings_participant ON findings (participant_id, occurred_utc);
CREATE INDEX IF NOT EXISTS findings_status ON findings (status, category);
CREATE INDEX IF NOT EXISTS findings_occurred ON findings (occurred_utc);
CREATE TABLE IF NOT EXISTS reviews (
    review_id TEXT PRIMARY KEY,
    finding_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    action TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    reviewed_at TEXT NOT NULL,
    comment TEXT,
    reason TEXT,
    assignee TEXT,
    outcome TEXT,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS reviews_finding ON reviews (finding_id, position);
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    participant_id TEXT NOT NULL,
    site_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    occurred_utc TEXT NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS events_participant ON events (participant_id, occurred_utc, position);
CREATE TABLE IF NOT EXISTS participants (
    participant_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL) WITHOUT ROWID; -- the site of the first ParticipantRegistered in log order
CREATE TABLE IF NOT EXISTS dead_letters (
    partition INTEGER NOT NULL,
    "offset" INTEGER NOT NULL,
    recorded_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    source TEXT NOT NULL,
    original BLOB NOT NULL,
    original_length INTEGER NOT NULL,
    PRIMARY KEY (partition, "offset"));
CREATE TABLE IF NOT EXISTS access_log (
    position INTEGER PRIMARY KEY,
    change_id TEXT NOT NULL UNIQUE,
    changed_at TEXT NOT NULL,
    action TEXT NOT NULL,
    operator TEXT NOT NULL,
    via TEXT NOT NULL,
    subject_kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    generation TEXT,
    role TEXT,
    site TEXT,
    enabled INTEGER NOT NULL,
    token_id TEXT);
CREATE INDEX IF NOT EXISTS access_log_subject ON access_log (subject_kind, subject, position);
"""
