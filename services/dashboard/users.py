"""Dashboard users: who they are, their argon2 password hashes, their state, in one SQLite file.

The file holds secrets' verifiers only (argon2 hashes of passwords, SHA-256 of tokens), never a
password or a token, and is readable by its owner alone (mode 0600). Nothing here logs a password
or a token, not even in an error.

Every user has a ``uid``, random and new each time the name is added, and a ``session_version``:
a session cookie names both, and is honoured only while they still match, so removing a user (and
adding the name again), logging out, a password change, disabling and a role change each end the
user's sessions at once. API tokens and set-password links are in ``credentials.py``; every change
here is published to the access log (``services/access_log.py``) before it is committed. What a
name, site, password and role must be is checked in ``user_checks.py`` (re-exported here).
"""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from contracts import AccessAction
from services.access_log import AccessRecorder, utc_now
from services.dashboard.credentials import CredentialStore, UserError
from services.dashboard.roles import Role, User
from services.dashboard.study_roles import (
    ensure_study_roles,
    legacy_study,
    remove_role_in,
    role_in,
    set_role_in,
    user_of,
    users_in,
)
from services.dashboard.user_checks import (
    MAX_PASSWORD_CHARS,
    NAME_PATTERN,
    SITE_PATTERN,
    check_password,
    check_role_and_site,
)

log = structlog.get_logger("trialguard.dashboard.users")

__all__ = [
    "MAX_PASSWORD_CHARS",
    "NAME_PATTERN",
    "SITE_PATTERN",
    "UserError",
    "UserStore",
    "check_password",
    "check_role_and_site",
]


def _user(db: sqlite3.Connection, row: sqlite3.Row) -> User:
    return user_of(db, row["name"], row["role"], row["site"])


class UserStore(CredentialStore):
    """The users of the dashboard, in an SQLite file; safe to share between threads.

    Args:
        path: The SQLite file; created (mode 0600) with its tables when missing, migrated when old.
        hasher: The argon2 hasher; tests pass a cheap one. The default uses argon2-cffi's
            recommended parameters (RFC 9106 low-memory profile).
        busy_timeout: Seconds a call waits for another writer before failing.
        clock: The current UTC time (token and link expiry); tests pass one they move.
        legacy: The study a role given without a study is for (``study_roles.legacy_study``).
    """

    def __init__(
        self,
        path: Path,
        hasher: PasswordHasher | None = None,
        busy_timeout: float = 10.0,
        clock: Callable[[], dt.datetime] = utc_now,
        legacy: str | None = None,
    ) -> None:
        super().__init__(Path(path), busy_timeout, clock)
        self.legacy_study = legacy or legacy_study()
        with self._connect() as db:
            ensure_study_roles(db, self.legacy_study)
        self._hasher = hasher or PasswordHasher()
        # Two threads rehashing one user's password at once would both write a valid hash; the
        # lock only keeps rehashing from racing within this process.
        self._lock = threading.Lock()
        self._dummy: str | None = None

    @property
    def _dummy_hash(self) -> str:
        """A hash made with this hasher's own parameters, of a password no one knows.

        Verifying against it for an unknown name costs what verifying a real user's password
        costs, so response time does not tell which names exist. Made on first use.
        """
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy

    def add(
        self,
        name: str,
        role: Role | str,
        password: str | None = None,
        site: str | None = None,
        recorder: AccessRecorder | None = None,
        study: str | None = None,
    ) -> User:
        """Add a user, enabled, with a new uid and a role in one study.

        The study is ``study``, else the recorder's (the access log the change goes to), else the
        legacy study.

        The commands add users without a password and issue a set-password link
        (``issue_password_link``), so no operator ever knows a user's password; ``password`` is
        for tests and fixtures.

        Raises:
            UserError: a bad name, role or site, a bad password, or a name taken.
            AccessLogError: Kafka did not take the event (nothing added).
        """
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise UserError(f"user name {str(name)[:80]!r}: 1-64 of the characters A-Z a-z 0-9 . _ @ -")
        checked_role = check_role_and_site(role, site)
        if password is not None:
            check_password(password, name)
        password_hash = None if password is None else self._hasher.hash(password)
        uid = secrets.token_hex(16)
        study = self._study(study, recorder)
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM users WHERE name=?", (name,)).fetchone():
                raise UserError(f"a user named {name!r} already exists")
            db.execute(
                "INSERT INTO users (name, uid, role, site, password_hash, enabled, session_version, created_at)"
                " VALUES (?, ?, ?, ?, ?, 1, 0, ?)",
                (name, uid, checked_role.value, site, password_hash, self._stamp()),
            )
            set_role_in(db, uid, study, checked_role, site)
            if recorder is not None:
                self._record(recorder, db, AccessAction.USER_ADDED, name)
            user = _user(db, self._row(db, name))
        log.info("user_added", user=name, role=checked_role.value, site=site, study=study)
        return user

    def _study(self, study: str | None, recorder: AccessRecorder | None) -> str:
        """The study a change is for: as told, else the access log's, else the legacy study.

        Raises:
            UserError: told one study while the change is recorded on another's access log.
        """
        if study is not None and recorder is not None and study != recorder.study_id:
            raise UserError(f"a change in study {study!r} belongs on its own access log, not {recorder.study_id!r}'s")
        return study or (recorder.study_id if recorder is not None else self.legacy_study)

    def _hash_new_password(self, password: str, name: str = "") -> str:
        check_password(password, name)
        return self._hasher.hash(password)

    def authenticate(self, name: str, password: str) -> User | None:
        """The enabled user whose name and password these are, or None.

        Takes about the same time whether or not the name exists, is enabled or has a password
        yet. A hash made with older argon2 parameters is replaced on a successful login.
        """
        dummy_hash = self._dummy_hash  # before the lookup: the first login costs the same, known name or not
        with self._connect() as connection:
            row = connection.execute(
                "SELECT name, role, site, password_hash, enabled FROM users WHERE name = ?", (name,)
            ).fetchone()
            user = None if row is None else _user(connection, row)
        # A password longer than add() accepts matches no one; compare something of the usual size
        # so a huge password costs no more than an ordinary one.
        too_long = len(password) > MAX_PASSWORD_CHARS
        candidate = "" if too_long else password
        usable = row is not None and row["password_hash"] is not None and row["enabled"]
        stored_hash = row["password_hash"] if usable else dummy_hash
        try:
            self._hasher.verify(stored_hash, candidate)
        except VerifyMismatchError:
            return None
        except (VerificationError, InvalidHashError):
            log.error("stored password hash cannot be verified", user=name)
            return None
        if not usable or too_long:
            return None
        if self._hasher.check_needs_rehash(stored_hash):
            self._rehash(row["name"], stored_hash, password)
        return user

    def _rehash(self, name: str, old_hash: str, password: str) -> None:
        new_hash = self._hasher.hash(password)
        with self._lock, self._connect() as connection:
            # Only if no one changed the hash meanwhile: never overwrite a newer password.
            connection.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?", (new_hash, name, old_hash)
            )
        log.info("password hash upgraded to the current argon2 parameters", user=name)

    def session_stamp(self, name: str) -> tuple[str, int] | None:
        """What a new session cookie records of a user: their uid and session version."""
        with self._connect() as connection:
            row = connection.execute("SELECT uid, session_version FROM users WHERE name=?", (name,)).fetchone()
        return None if row is None else (str(row["uid"]), int(row["session_version"]))

    def session_user(self, name: str, uid: str, version: int) -> User | None:
        """The user of a session cookie, only while it is still theirs and current.

        Returns:
            None when the user was removed (or removed and added again: another uid), is
            disabled, or ended their sessions since (logout, password, role, disable).
        """
        with self._connect() as connection:
            row = connection.execute(
                "SELECT name, role, site FROM users WHERE name=? AND uid=? AND session_version=? AND enabled=1",
                (name, uid, version),
            ).fetchone()
            return None if row is None else _user(connection, row)

    def end_sessions(self, name: str) -> None:
        """End every session of a user (logout): their cookies stop working everywhere at once."""
        with self._connect() as connection:
            connection.execute("UPDATE users SET session_version = session_version + 1 WHERE name=?", (name,))
        log.info("sessions_ended", user=name)

    def set_password(self, name: str, password: str, recorder: AccessRecorder) -> None:
        """An operator sets a user's password (a reset); the user's sessions end.

        Raises:
            UserError: no such user, or a password the rule refuses.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        password_hash = self._hash_new_password(password, name)
        with self._transaction() as db:
            self._row(db, name)
            db.execute(
                "UPDATE users SET password_hash=?, session_version=session_version+1 WHERE name=?",
                (password_hash, name),
            )
            self._record(recorder, db, AccessAction.USER_PASSWORD_CHANGED, name)

    def set_enabled(self, name: str, enabled: bool, recorder: AccessRecorder) -> None:
        """Disable (sessions, tokens and login refused at once) or enable a user.

        Raises:
            UserError: no such user.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        with self._transaction() as db:
            self._row(db, name)
            db.execute(
                "UPDATE users SET enabled=?, session_version=session_version+1 WHERE name=?", (int(enabled), name)
            )
            action = AccessAction.USER_ENABLED if enabled else AccessAction.USER_DISABLED
            self._record(recorder, db, action, name)

    def set_role(
        self, name: str, role: Role | str, site: str | None, recorder: AccessRecorder, study: str | None = None
    ) -> User:
        """Give a user a role (and site) in a study, replacing the one they had there; their
        sessions end. The study is the recorder's unless told (``_study``).

        Raises:
            UserError: no such user, or a bad role or site.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        checked = check_role_and_site(role, site)
        study = self._study(study, recorder)
        with self._transaction() as db:
            row = self._row(db, name)
            # The users row keeps the role last given: what a study the user has no role in
            # records of them in its access log (with enabled=False).
            db.execute(
                "UPDATE users SET role=?, site=?, session_version=session_version+1 WHERE name=?",
                (checked.value, site, name),
            )
            set_role_in(db, row["uid"], study, checked, site)
            self._record(recorder, db, AccessAction.USER_ROLE_CHANGED, name)
        return User(name, checked, site, study=study)

    def revoke_role(self, name: str, recorder: AccessRecorder, study: str | None = None) -> None:
        """Take a user's role in a study away (the recorder's unless told); their sessions end.
        The study's access log records them as not enabled there.

        Raises:
            UserError: no such user, or no role in that study.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        study = self._study(study, recorder)
        with self._transaction() as db:
            row = self._row(db, name)
            if not remove_role_in(db, row["uid"], study):
                raise UserError(f"{name!r} has no role in study {study!r}")
            db.execute("UPDATE users SET session_version=session_version+1 WHERE name=?", (name,))
            self._record(recorder, db, AccessAction.USER_ROLE_CHANGED, name)

    def users_in(self, study_id: str) -> list[User]:
        """The enabled users with a role in a study, by name (the assignees a finding may have)."""
        with self._connect() as db:
            return users_in(db, study_id)

    def _record(
        self,
        recorder: AccessRecorder,
        db: sqlite3.Connection,
        action: AccessAction,
        name: str,
        row: sqlite3.Row | None = None,
        **extra: Any,
    ) -> None:
        """Publish a user's change with their role, site and state in the access log's study:
        a user without a role there is recorded with the role last given and not enabled."""
        row = row if row is not None else self._row(db, name)
        held = role_in(db, row["uid"], recorder.study_id)
        fields: dict[str, Any] = {"generation": row["uid"], "role": row["role"], "site": row["site"]}
        fields["enabled"] = bool(row["enabled"]) and held is not None
        if held is not None:
            fields |= {"role": held.role.value, "site": held.site}
        recorder.record(action, "user", name, **(fields | extra))

    def remove(self, name: str, recorder: AccessRecorder) -> None:
        """Remove a user with their tokens and links; the name may be added again as a new user.

        Raises:
            UserError: no such user.
            AccessLogError: Kafka did not take the event (nothing removed).
        """
        with self._transaction() as db:
            row = self._row(db, name)
            db.execute("DELETE FROM users WHERE uid=?", (row["uid"],))
            self._record(recorder, db, AccessAction.USER_REMOVED, name, row=row, enabled=False)

    def get(self, name: str) -> User | None:
        """The user with this name, or None (disabled users included)."""
        with self._connect() as connection:
            row = connection.execute("SELECT name, role, site FROM users WHERE name = ?", (name,)).fetchone()
            return None if row is None else _user(connection, row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self._connect() as connection:
            rows = connection.execute("SELECT name, role, site FROM users ORDER BY name").fetchall()
            return [_user(connection, row) for row in rows]

    def list_states(self, study: str | None = None) -> list[sqlite3.Row]:
        """Every user with their state: name, role, site, enabled, password set, created; with
        ``study``, only the users with a role in it, and that role and site."""
        with self._connect() as connection:
            if study is not None:
                return connection.execute(
                    "SELECT name, study_roles.role, study_roles.site, enabled,"
                    " password_hash IS NOT NULL AS has_password, created_at"
                    " FROM users JOIN study_roles USING (uid) WHERE study_id=? ORDER BY name",
                    (study,),
                ).fetchall()
            return connection.execute(
                "SELECT name, role, site, enabled, password_hash IS NOT NULL AS has_password, created_at"
                " FROM users ORDER BY name"
            ).fetchall()

    def count(self) -> int:
        """How many users there are."""
        with self._connect() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM users").fetchone()
        return int(count)
