"""Dashboard users, their argon2 password hashes and their API bearer tokens, in one SQLite file.

The file holds secrets' verifiers only (argon2 hashes of passwords, SHA-256 of tokens), never a
password or a token, and is readable by its owner alone (mode 0600). Nothing here logs a password
or a token, not even in an error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from zxcvbn import zxcvbn

from services.dashboard.roles import Role, User

log = structlog.get_logger("trialguard.dashboard.users")

NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9._@-]{1,64}")
"""A user name: the same characters as the ``actor`` of a ``FindingReviewed`` event."""

SITE_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
"""A site id: the contract's ``Identifier``, as carried by every participant event."""

MIN_PASSWORD_CHARS: Final = 12
MAX_PASSWORD_CHARS: Final = 1_024
"""Long enough for any passphrase; bounds the work one login attempt can ask of the server."""
MIN_PASSWORD_SCORE: Final = 3
"""zxcvbn's score (0-4) a password must reach: 3 is "safely unguessable: moderate protection from
offline slow-hash scenario" (about 10^8 guesses or more), far beyond what the login throttle lets
anyone try online."""
ESTIMATED_CHARS: Final = 100
"""zxcvbn judges this many first characters (its matching is slow on long inputs); the rest can
only make a password stronger."""


def check_password(password: str, name: str) -> None:
    """Refuse a password that is too short, too long, or guessable (zxcvbn, a maintained strength
    estimator: common passwords, dictionary words, repeats, sequences, keyboard patterns, the
    user's own name).

    Raises:
        UserError: saying why, with zxcvbn's advice; never quoting the password.
    """
    if len(password) < MIN_PASSWORD_CHARS:
        raise UserError(f"the password is shorter than {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise UserError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    estimate = zxcvbn(password[:ESTIMATED_CHARS], user_inputs=[name, "trialguard", "dashboard"])
    if estimate["score"] < MIN_PASSWORD_SCORE:
        feedback = estimate["feedback"]
        advice = " ".join([feedback["warning"], *feedback["suggestions"]]).strip()
        raise UserError(
            f"the password is too easy to guess (strength {estimate['score']} of 4, at least {MIN_PASSWORD_SCORE} "
            f"needed). {advice or 'Add another word or two. Uncommon words are better.'}"
        )


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    site TEXT,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_name ON tokens(name);
"""


class UserError(ValueError):
    """A user that cannot be added as asked, or a token for a user who does not exist."""


def _token_digest(token: str) -> str:
    # A token is 32 random bytes (256 bits) from `secrets`: no one can guess it or search for it,
    # so unlike a password it needs no slow, salted hash. SHA-256 keeps a stolen copy of the file
    # from being usable, and makes the lookup by digest safe against timing: an attacker controls
    # the token, not its digest, so how fast the index finds (or misses) a digest tells them
    # nothing about any stored token.
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _user(row: sqlite3.Row) -> User:
    return User(name=row["name"], role=Role(row["role"]), site=row["site"])


class UserStore:
    """The users of the dashboard, in an SQLite file; safe to share between threads.

    Each call opens its own connection, so threads never share one; SQLite's own file locking
    orders concurrent writers (a writer waits up to ``busy_timeout`` seconds for another).

    Args:
        path: The SQLite file; it and its table are created when missing, with mode 0600.
        hasher: The argon2 hasher; tests pass a cheap one. The default uses argon2-cffi's
            recommended parameters (RFC 9106 low-memory profile).
        busy_timeout: Seconds a call waits for another writer before failing.
    """

    def __init__(self, path: Path, hasher: PasswordHasher | None = None, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._hasher = hasher or PasswordHasher()
        self._busy_timeout = busy_timeout
        # Two threads rehashing one user's password at once would both write a valid hash; the
        # lock only keeps schema creation and rehashing from racing within this process.
        self._lock = threading.Lock()
        self._create()
        self._dummy: str | None = None

    @property
    def _dummy_hash(self) -> str:
        """A hash made with this hasher's own parameters, of a password no one knows.

        Verifying against it for an unknown name costs what verifying a real user's password
        costs, so response time does not tell which names exist. Made on first use, so the
        commands that never log anyone in (``users token``, ``users list``) do not pay for it.
        """
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file ourselves with 0600 before SQLite opens it, so it is never readable by
        # others, not even for a moment. SQLite gives its journal files the database's mode.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        with self._lock, self._connect() as connection:
            connection.executescript(_SCHEMA)

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

    def add(self, name: str, role: Role | str, password: str, site: str | None = None) -> User:
        """Add a user with an argon2 hash of their password.

        Args:
            name: 1-64 of ``A-Z a-z 0-9 . _ @ -``; user names are case-sensitive.
            role: One of ``Role`` (or its value, such as ``"data-manager"``).
            password: At least 12 characters (at most 1,024), and hard to guess (``check_password``).
            site: The site id of a ``site`` user; must be None for every other role.

        Returns:
            The user added.

        Raises:
            UserError: a bad name, an unknown role, a site missing for a site user or given for
                another role, a bad site id, a password too short, too long or too easy to guess, or a name taken.
        """
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise UserError(f"user name {str(name)[:80]!r}: 1-64 of the characters A-Z a-z 0-9 . _ @ -")
        try:
            checked_role = Role(role)
        except ValueError:
            roles = ", ".join(r.value for r in Role)
            raise UserError(f"unknown role {str(role)[:40]!r}: one of {roles}") from None
        if checked_role is Role.SITE and site is None:
            raise UserError("a site user needs a site: the site id whose findings they see")
        if checked_role is not Role.SITE and site is not None:
            raise UserError(f"only a site user has a site; role {checked_role.value!r} sees every site")
        if site is not None and not SITE_PATTERN.fullmatch(site):
            raise UserError(f"site {site[:80]!r}: 1-64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit")
        check_password(password, name)
        password_hash = self._hasher.hash(password)
        try:
            with self._connect() as connection:
                connection.execute(
                    "INSERT INTO users (name, role, site, password_hash, created_at) VALUES (?, ?, ?, ?, ?)",
                    (name, checked_role.value, site, password_hash, _now()),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"a user named {name!r} already exists") from None
        log.info("user added", user=name, role=checked_role.value, site=site)
        return User(name=name, role=checked_role, site=site)

    def authenticate(self, name: str, password: str) -> User | None:
        """The user whose name and password these are, or None.

        Takes about the same time whether or not the name exists. A hash made with older argon2
        parameters is replaced by one with the current parameters on a successful login.

        Args:
            name: The login name, as typed.
            password: The password, as typed.

        Returns:
            The user when the password is right; None for a wrong password or an unknown name.
        """
        dummy_hash = self._dummy_hash  # before the lookup: the first login costs the same, known name or not
        with self._connect() as connection:
            row = connection.execute(
                "SELECT name, role, site, password_hash FROM users WHERE name = ?", (name,)
            ).fetchone()
        # A password longer than add() accepts matches no one; compare something of the usual size
        # so a huge password costs no more than an ordinary one.
        too_long = len(password) > MAX_PASSWORD_CHARS
        candidate = "" if too_long else password
        stored_hash = dummy_hash if row is None else row["password_hash"]
        try:
            self._hasher.verify(stored_hash, candidate)
        except VerifyMismatchError:
            return None
        except (VerificationError, InvalidHashError):
            # A damaged hash in the file: refuse the login and say so, without the password.
            log.error("stored password hash cannot be verified", user=name)
            return None
        if row is None or too_long:
            return None
        if self._hasher.check_needs_rehash(stored_hash):
            self._rehash(row["name"], stored_hash, password)
        return _user(row)

    def _rehash(self, name: str, old_hash: str, password: str) -> None:
        new_hash = self._hasher.hash(password)
        with self._lock, self._connect() as connection:
            # Only if no one changed the hash meanwhile: never overwrite a newer password.
            connection.execute(
                "UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?", (new_hash, name, old_hash)
            )
        log.info("password hash upgraded to the current argon2 parameters", user=name)

    def issue_token(self, name: str) -> str:
        """A new API bearer token for a user; the user's earlier tokens stay valid.

        Only the token's SHA-256 is stored: the token is shown once, to the caller.

        Raises:
            UserError: no user has this name.
        """
        token = secrets.token_urlsafe(32)
        try:
            with self._connect() as connection:
                connection.execute(
                    "INSERT INTO tokens (token_sha256, name, created_at) VALUES (?, ?, ?)",
                    (_token_digest(token), name, _now()),
                )
        except sqlite3.IntegrityError:
            # The foreign key refuses a token for a name that is not in users.
            raise UserError(f"no user named {name[:80]!r}") from None
        log.info("API token issued", user=name)
        return token

    def user_for_token(self, token: str) -> User | None:
        """The user a bearer token belongs to, or None for a token that was never issued."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT users.name, users.role, users.site FROM tokens JOIN users ON users.name = tokens.name "
                "WHERE tokens.token_sha256 = ?",
                (_token_digest(token),),
            ).fetchone()
        return None if row is None else _user(row)

    def get(self, name: str) -> User | None:
        """The user with this name, or None."""
        with self._connect() as connection:
            row = connection.execute("SELECT name, role, site FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else _user(row)

    def list_users(self) -> list[User]:
        """Every user, by name."""
        with self._connect() as connection:
            rows = connection.execute("SELECT name, role, site FROM users ORDER BY name").fetchall()
        return [_user(row) for row in rows]

    def count(self) -> int:
        """How many users there are."""
        with self._connect() as connection:
            (count,) = connection.execute("SELECT COUNT(*) FROM users").fetchone()
        return int(count)
