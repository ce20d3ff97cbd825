"""The notifier's SQLite file: the subscriptions and the outbox.

The outbox holds one row per (subscription, finding): written in the same transaction for every
subscriber of a batch of findings, before the consumer commits the batch's Kafka offsets, so a
finding read again after a crash finds its rows already there (``INSERT OR IGNORE``) and is not
sent twice. A row is ``pending`` until a send succeeds (``delivered``) or fails ``max_attempts``
times (``dead``). The file holds webhook secrets and finding ids: readable by its owner only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.notifier.matching import Notice
from services.notifier.subscriptions import Channel, Kind, Subscription, SubscriptionError

SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    subscription_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    study_id TEXT NOT NULL,
    kind TEXT,
    rules TEXT NOT NULL,   -- JSON list, empty: every rule
    site TEXT,
    secret TEXT,
    created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    subscription_id TEXT NOT NULL,
    finding_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    secret TEXT,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending, delivered, dead
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error TEXT,                        -- the kind of failure only (HTTP 500, ConnectError)
    created_at REAL NOT NULL,
    finished_at REAL,
    PRIMARY KEY (subscription_id, finding_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
"""


@dataclass(frozen=True)
class Delivery:
    """One outbox row to send."""

    subscription_id: str
    finding_id: str
    channel: Channel
    target: str
    secret: str | None
    payload: str
    attempts: int

    @property
    def delivery_id(self) -> str:
        """The same on every attempt: the receiver's idempotency key."""
        return f"{self.subscription_id}/{self.finding_id}"


def _subscription(row: sqlite3.Row) -> Subscription:
    return Subscription(
        subscription_id=row["subscription_id"],
        owner=row["owner"],
        channel=Channel(row["channel"]),
        target=row["target"],
        study_id=row["study_id"],
        kind=None if row["kind"] is None else Kind(row["kind"]),
        rules=tuple(json.loads(row["rules"])),
        site=row["site"],
        secret=row["secret"],
        created_at=row["created_at"],
    )


class NotifierStore:
    """The SQLite file at ``path`` (created, mode 0600, with its folder, when missing); safe to
    share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an outbox row committed must survive a crash
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    # Subscriptions

    def add_subscription(self, subscription: Subscription) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    subscription.subscription_id,
                    subscription.owner,
                    subscription.channel.value,
                    subscription.target,
                    subscription.study_id,
                    None if subscription.kind is None else subscription.kind.value,
                    json.dumps(list(subscription.rules)),
                    subscription.site,
                    subscription.secret,
                    subscription.created_at,
                ),
            )

    def subscriptions(self, study_id: str | None = None) -> list[Subscription]:
        """Every subscription (of one study), oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM subscriptions WHERE ? IS NULL OR study_id=? ORDER BY created_at, subscription_id",
                (study_id, study_id),
            ).fetchall()
        return [_subscription(row) for row in rows]

    def remove_subscription(self, subscription_id: str) -> None:
        """Remove it; its pending deliveries are dropped, what was delivered or dead stays on record.

        Raises:
            SubscriptionError: no such subscription.
        """
        with self._transaction() as db:
            if not db.execute("DELETE FROM subscriptions WHERE subscription_id=?", (subscription_id,)).rowcount:
                raise SubscriptionError(f"no subscription {subscription_id[:40]!r} (see `notify list`)")
            db.execute("DELETE FROM outbox WHERE subscription_id=? AND state='pending'", (subscription_id,))

    # Outbox

    def enqueue(self, pairs: Sequence[tuple[Subscription, Notice]]) -> int:
        """Write a pending row per (subscription, finding) not already there, in one transaction.

        Returns:
            How many rows are new (a finding read again adds none).
        """
        now = time.time()
        added = 0
        with self._transaction() as db:
            for subscription, notice in pairs:
                added += db.execute(
                    "INSERT OR IGNORE INTO outbox (subscription_id, finding_id, channel, target, secret, payload,"
                    " next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        subscription.subscription_id,
                        notice.finding_id,
                        subscription.channel.value,
                        subscription.target,
                        subscription.secret,
                        json.dumps(dict(notice.payload), sort_keys=True),
                        now,
                        now,
                    ),
                ).rowcount
        return added

    def due(self, limit: int, now: float | None = None) -> list[Delivery]:
        """Pending rows whose next attempt is due, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE state='pending' AND next_attempt_at<=?"
                " ORDER BY next_attempt_at, created_at LIMIT ?",
                (time.time() if now is None else now, limit),
            ).fetchall()
        return [
            Delivery(
                row["subscription_id"],
                row["finding_id"],
                Channel(row["channel"]),
                row["target"],
                row["secret"],
                row["payload"],
                row["attempts"],
            )
            for row in rows
        ]

    def next_due(self) -> float | None:
        """When the earliest pending row is due (Unix seconds), None when nothing is pending."""
        with self._lock:
            row = self._db.execute("SELECT min(next_attempt_at) FROM outbox WHERE state='pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def delivered(self, delivery: Delivery) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE outbox SET state='delivered', attempts=attempts+1, finished_at=?, last_error=NULL"
                " WHERE subscription_id=? AND finding_id=? AND state='pending'",
                (time.time(), delivery.subscription_id, delivery.finding_id),
            )

    def failed(self, delivery: Delivery, error: str, retry_at: float | None) -> None:
        """Record a failed attempt: retried at ``retry_at``, or dead when None."""
        with self._transaction() as db:
            db.execute(
                "UPDATE outbox SET attempts=attempts+1, last_error=?, next_attempt_at=COALESCE(?, next_attempt_at),"
                " state=CASE WHEN ? IS NULL THEN 'dead' ELSE 'pending' END,"
                " finished_at=CASE WHEN ? IS NULL THEN ? ELSE NULL END"
                " WHERE subscription_id=? AND finding_id=? AND state='pending'",
                (error[:80], retry_at, retry_at, retry_at, time.time(), delivery.subscription_id, delivery.finding_id),
            )

    def retry_dead(self, subscription_id: str | None = None) -> int:
        """Put dead rows (of one subscription) back to pending, attempts from zero; how many."""
        with self._transaction() as db:
            return db.execute(
                "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=?, finished_at=NULL"
                " WHERE state='dead' AND (? IS NULL OR subscription_id=?)",
                (time.time(), subscription_id, subscription_id),
            ).rowcount

    def counts(self, study_id: str | None = None) -> dict[str, dict[str, int]]:
        """Rows by subscription and state: {subscription_id: {"pending": n, "delivered": n, "dead": n}};
        of one study's subscriptions when ``study_id`` is given."""
        with self._lock:
            if study_id is None:
                rows = self._db.execute(
                    "SELECT subscription_id, state, count(*) AS n FROM outbox GROUP BY subscription_id, state"
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT o.subscription_id, o.state, count(*) AS n FROM outbox o"
                    " JOIN subscriptions s ON s.subscription_id = o.subscription_id WHERE s.study_id = ?"
                    " GROUP BY o.subscription_id, o.state",
                    (study_id,),
                ).fetchall()
        result: dict[str, dict[str, int]] = {}
        for row in rows:
            result.setdefault(row["subscription_id"], {"pending": 0, "delivered": 0, "dead": 0})[row["state"]] = row[
                "n"
            ]
        return result

    def dead_letters(self, limit: int = 100, study_id: str | None = None) -> list[dict[str, Any]]:
        """The newest dead rows: ids, attempts, the kind of the last failure, when it died; of one
        study's subscriptions when ``study_id`` is given."""
        columns = "o.subscription_id, o.finding_id, o.channel, o.attempts, o.last_error, o.created_at, o.finished_at"
        with self._lock:
            if study_id is None:
                rows = self._db.execute(
                    f"SELECT {columns} FROM outbox o WHERE o.state='dead' ORDER BY o.finished_at DESC LIMIT ?",  # noqa: S608 (constant columns)
                    (limit,),
                ).fetchall()
            else:
                rows = self._db.execute(
                    f"SELECT {columns} FROM outbox o JOIN subscriptions s ON s.subscription_id = o.subscription_id"  # noqa: S608 (constant columns)
                    " WHERE o.state='dead' AND s.study_id = ? ORDER BY o.finished_at DESC LIMIT ?",
                    (study_id, limit),
                ).fetchall()
        return [dict(row) for row in rows]
