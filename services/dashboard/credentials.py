"""The user store's file and its credentials other than passwords: API tokens and set-password links.

An API token has a public id (listed, revoked by id), an expiry (90 days unless told), and may be
revoked; only its SHA-256 is kept. A set-password link carries a one-time token (SHA-256 kept)
that lets a new user choose their own password within 72 hours, once. Both belong to one
generation of a user (``uid``), so removing a user deletes them, and a user added again under the
same name gets none of the old ones.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import structlog

from contracts import AccessAction
from services.access_log import AccessRecorder
from services.dashboard.roles import User
from services.dashboard.study_roles import user_of

log = structlog.get_logger("trialguard.dashboard.credentials")

TOKEN_DAYS: Final = 90
"""How long an API token lasts unless told otherwise."""
MAX_TOKEN_DAYS: Final = 366
LINK_HOURS: Final = 72
"""How long a set-password link lasts."""

SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    site TEXT,
    password_hash TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    session_version INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX IF NOT EXISTS tokens_by_uid ON tokens(uid);
CREATE TABLE IF NOT EXISTS password_links (
    token_sha256 TEXT PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
"""

_MIGRATE_FROM_0: Final = """
ALTER TABLE users RENAME TO users_v0;
ALTER TABLE tokens RENAME TO tokens_v0;
DROP INDEX IF EXISTS tokens_by_name;
{schema}
INSERT INTO users (name, uid, role, site, password_hash, enabled, session_version, created_at)
    SELECT name, lower(hex(randomblob(16))), role, site, password_hash, 1, 0, created_at FROM users_v0;
INSERT INTO tokens (token_id, token_sha256, uid, created_at, expires_at)
    SELECT lower(hex(randomblob(6))), t.token_sha256, u.uid, t.created_at, :expires
    FROM tokens_v0 t JOIN users u ON u.name = t.name;
DROP TABLE tokens_v0;
DROP TABLE users_v0;
"""
"""Users of a file from before the lifecycle keep their passwords; their tokens get an expiry."""


class UserError(ValueError):
    """A user or credential that cannot be changed as asked; the message says what and why."""


@dataclass(frozen=True)
class TokenInfo:
    """What ``users tokens`` lists of a token: never the token or its digest."""

    token_id: str
    created_at: str
    expires_at: str
    revoked_at: str | None


def digest(secret: str) -> str:
    # Tokens and links are 32 random bytes from `secrets`: no one can guess them, so unlike a
    # password they need no slow, salted hash. SHA-256 keeps a stolen copy of the file from being
    # usable, and the lookup by digest tells a timing attacker nothing about any stored token.
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def _text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


class CredentialStore:
    """The SQLite file of the user store, its migrations, tokens and set-password links."""

    def __init__(self, path: Path, busy_timeout: float, clock: Callable[[], dt.datetime]) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._create()

    def _now(self) -> dt.datetime:
        return self._clock().astimezone(dt.UTC)

    def _stamp(self) -> str:
        return _text(self._now())

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file ourselves with 0600 before SQLite opens it, so it is never readable by
        # others, not even for a moment. SQLite gives its journal files the database's mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        with self._connect() as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
            old = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='users'").fetchone()
            if version == 0 and old is not None:
                expires = _text(self._now() + dt.timedelta(days=TOKEN_DAYS))
                db.execute("PRAGMA foreign_keys = OFF")
                script = _MIGRATE_FROM_0.format(schema=_SCHEMA).replace(":expires", f"'{expires}'")
                db.executescript(script)
                log.info("user_store_migrated", to=SCHEMA_VERSION)
            else:
                db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one call, committed on success and always closed."""
        connection = sqlite3.connect(self.path, timeout=self._busy_timeout)
        try:
            connection.row_factory = sqlite3.Row
            connection.execute("PRAGMA foreign_keys = ON")
            with connection:
                yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed only when the block (and its access-log event) succeeded."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            yield connection

    @staticmethod
    def _row(db: sqlite3.Connection, name: str) -> sqlite3.Row:
        row = db.execute("SELECT * FROM users WHERE name=?", (name,)).fetchone()
        if row is None:
            raise UserError(f"no user named {name[:80]!r}")
        return row  # type: ignore[no-any-return]

    def _record(
        self,
        recorder: AccessRecorder,
        db: sqlite3.Connection,
        action: AccessAction,
        name: str,
        row: sqlite3.Row | None = None,
        **extra: Any,
    ) -> None:
        """Publish a user's change, with their state after it, inside the open transaction."""
        row = row if row is not None else self._row(db, name)
        fields: dict[str, Any] = {"generation": row["uid"], "role": row["role"], "site": row["site"]}
        fields["enabled"] = bool(row["enabled"])
        recorder.record(action, "user", name, **(fields | extra))

    # --- API tokens ---------------------------------------------------------------------------

    def issue_token(self, name: str, recorder: AccessRecorder | None = None, days: int = TOKEN_DAYS) -> str:
        """A new API bearer token for a user, valid for ``days``; shown once, only its SHA-256 kept.

        Raises:
            UserError: no such user, or ``days`` out of 1..366.
            AccessLogError: Kafka did not take the event (no token issued).
        """
        if not 1 <= days <= MAX_TOKEN_DAYS:
            raise UserError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days, not {days}")
        token, token_id = secrets.token_urlsafe(32), secrets.token_hex(6)
        expires = self._now() + dt.timedelta(days=days)
        with self._transaction() as db:
            row = self._row(db, name)
            db.execute(
                "INSERT INTO tokens (token_id, token_sha256, uid, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (token_id, digest(token), row["uid"], self._stamp(), _text(expires)),
            )
            if recorder is not None:
                self._record(
                    recorder, db, AccessAction.TOKEN_ISSUED, name, row, token_id=token_id, token_expires_at=expires
                )
        log.info("api_token_issued", user=name, token_id=token_id)
        return token

    def user_for_token(self, token: str) -> User | None:
        """The user of a bearer token, or None: never issued, revoked, expired, or a disabled user."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT users.name, users.role, users.site FROM tokens JOIN users ON users.uid = tokens.uid"
                " WHERE tokens.token_sha256 = ? AND tokens.revoked_at IS NULL AND tokens.expires_at > ?"
                " AND users.enabled = 1",
                (digest(token), self._stamp()),
            ).fetchone()
            return None if row is None else user_of(connection, row["name"], row["role"], row["site"])

    def tokens_of(self, name: str) -> list[TokenInfo]:
        """A user's tokens, oldest first: id, created, expires, revoked.

        Raises:
            UserError: no such user.
        """
        with self._connect() as db:
            row = self._row(db, name)
            rows = db.execute(
                "SELECT token_id, created_at, expires_at, revoked_at FROM tokens WHERE uid=? ORDER BY created_at",
                (row["uid"],),
            ).fetchall()
        return [TokenInfo(r["token_id"], r["created_at"], r["expires_at"], r["revoked_at"]) for r in rows]

    def token_owner(self, token_id: str) -> str | None:
        """The name of the user a token id belongs to (None: no such token)."""
        with self._connect() as db:
            found = db.execute(
                "SELECT users.name FROM tokens JOIN users ON users.uid = tokens.uid WHERE tokens.token_id = ?",
                (token_id,),
            ).fetchone()
        return None if found is None else str(found["name"])

    def revoke_token(self, token_id: str, recorder: AccessRecorder) -> str:
        """Revoke a token by its id, at once; returns the name of its user.

        Raises:
            UserError: no such token, or already revoked.
            AccessLogError: Kafka did not take the event (the token still works).
        """
        with self._transaction() as db:
            found = db.execute(
                "SELECT users.name, tokens.revoked_at FROM tokens JOIN users ON users.uid = tokens.uid"
                " WHERE tokens.token_id = ?",
                (token_id,),
            ).fetchone()
            if found is None:
                raise UserError(f"no token with id {token_id[:40]!r} (see `trialguard users tokens NAME`)")
            if found["revoked_at"] is not None:
                raise UserError(f"token {token_id!r} was already revoked at {found['revoked_at']}")
            db.execute("UPDATE tokens SET revoked_at=? WHERE token_id=?", (self._stamp(), token_id))
            self._record(recorder, db, AccessAction.TOKEN_REVOKED, found["name"], token_id=token_id)
        return str(found["name"])

    # --- set-password links -------------------------------------------------------------------

    def issue_password_link(self, name: str, recorder: AccessRecorder | None, *, new_user: bool = False) -> str:
        """A one-time set-password token for a user (72 hours); earlier unused ones stop working.

        Raises:
            UserError: no such user.
            AccessLogError: Kafka did not take the event (no link issued).
        """
        token = secrets.token_urlsafe(32)
        expires = self._now() + dt.timedelta(hours=LINK_HOURS)
        with self._transaction() as db:
            row = self._row(db, name)
            db.execute("DELETE FROM password_links WHERE uid=?", (row["uid"],))
            db.execute(
                "INSERT INTO password_links VALUES (?, ?, ?, ?, NULL)",
                (digest(token), row["uid"], self._stamp(), _text(expires)),
            )
            if recorder is not None and not new_user:  # a new user's link is part of USER_ADDED
                self._record(recorder, db, AccessAction.USER_PASSWORD_LINK_ISSUED, name, row)
        return token

    def user_for_link(self, token: str) -> User | None:
        """The user a set-password token is for, while it is unused and unexpired."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT users.name, users.role, users.site FROM password_links JOIN users USING (uid)"
                " WHERE token_sha256=? AND used_at IS NULL AND expires_at > ? AND users.enabled = 1",
                (digest(token), self._stamp()),
            ).fetchone()
            return None if row is None else user_of(connection, row["name"], row["role"], row["site"])

    def _hash_new_password(self, password: str, name: str = "") -> str:
        raise NotImplementedError  # UserStore: the password rule, then argon2

    def set_password_with_link(self, token: str, password: str, recorder: AccessRecorder) -> User:
        """The user of a set-password link chooses their password; the link is then used up.

        Raises:
            UserError: the link is unknown, used, expired or its user disabled; or the password
                rule refuses the password.
            AccessLogError: Kafka did not take the event (nothing changed; the link still works).
        """
        linked = self.user_for_link(token)  # the user's own name is a guess an attacker tries first
        password_hash = self._hash_new_password(password, "" if linked is None else linked.name)
        with self._transaction() as db:
            row = db.execute(
                "SELECT users.name FROM password_links JOIN users USING (uid)"
                " WHERE token_sha256=? AND used_at IS NULL AND expires_at > ? AND users.enabled = 1",
                (digest(token), self._stamp()),
            ).fetchone()
            if row is None:
                raise UserError("this set-password link is unknown, used or expired: ask for a new one")
            name = str(row["name"])
            db.execute("UPDATE password_links SET used_at=? WHERE token_sha256=?", (self._stamp(), digest(token)))
            db.execute(
                "UPDATE users SET password_hash=?, session_version=session_version+1 WHERE name=?",
                (password_hash, name),
            )
            self._record(recorder, db, AccessAction.USER_PASSWORD_SET, name, operator=name)
            user = self._row(db, name)
            return user_of(db, name, user["role"], user["site"])
