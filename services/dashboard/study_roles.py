"""Users' roles per study, in the user store: a monitor of one study has no business in another.

Each user holds at most one role (and, for a ``site`` user, one site) in each study, in the table
``study_roles`` of ``users.sqlite3``. A user without a row for a study sees nothing of it: the
dashboard answers 404 for its pages and API, as for a study that does not exist.

A user store from before roles per study (a ``users`` table with one role each, no
``study_roles``) is migrated when first opened: each user's role becomes their role in the
*legacy study*, ``TRIALGUARD_STUDY_ID`` (its first; default NCT06904729), the one study a dashboard served
then. Nobody gains a role in any other study by the migration; an operator gives it with
``trialguard users role NAME --study STUDY --role ROLE``.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Final

import structlog

from services.dashboard.roles import Role, StudyRole, User
from services.defaults import DEFAULT_STUDY

log = structlog.get_logger("trialguard.dashboard.study_roles")

SCHEMA: Final = """
CREATE TABLE study_roles (
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    study_id TEXT NOT NULL,
    role TEXT NOT NULL,
    site TEXT,
    PRIMARY KEY (uid, study_id)
) WITHOUT ROWID
"""


def legacy_study() -> str:
    """The study a role given without a study is for: ``TRIALGUARD_STUDY_ID`` (its first, when it
    names several), else NCT06904729."""
    return (os.environ.get("TRIALGUARD_STUDY_ID") or "").split(",")[0].strip() or DEFAULT_STUDY


def ensure_study_roles(db: sqlite3.Connection, legacy: str) -> None:
    """Create ``study_roles`` when absent, giving every existing user their role in ``legacy``.

    Runs in one immediate transaction: two processes opening an old store at once migrate it once.
    """
    db.execute("BEGIN IMMEDIATE")
    if db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='study_roles'").fetchone():
        return
    db.execute(SCHEMA)
    moved = db.execute("INSERT INTO study_roles SELECT uid, ?, role, site FROM users", (legacy,)).rowcount
    if moved:
        log.info("user_store_migrated_to_study_roles", users=moved, study=legacy)


def roles_of(db: sqlite3.Connection, name: str) -> tuple[StudyRole, ...]:
    """A user's role in each study, by study id."""
    rows = db.execute(
        "SELECT study_id, study_roles.role, study_roles.site FROM study_roles JOIN users USING (uid)"
        " WHERE users.name = ? ORDER BY study_id",
        (name,),
    ).fetchall()
    return tuple(StudyRole(row[0], Role(row[1]), row[2]) for row in rows)


def user_of(db: sqlite3.Connection, name: str, role: str, site: str | None) -> User:
    """A user from their ``users`` row's name, role and site, with their roles per study."""
    return User(name, Role(role), site, studies=roles_of(db, name))


def role_in(db: sqlite3.Connection, uid: str, study_id: str) -> StudyRole | None:
    """The role one generation of a user holds in a study, or None."""
    row = db.execute("SELECT role, site FROM study_roles WHERE uid=? AND study_id=?", (uid, study_id)).fetchone()
    return None if row is None else StudyRole(study_id, Role(row[0]), row[1])


def set_role_in(db: sqlite3.Connection, uid: str, study_id: str, role: Role, site: str | None) -> None:
    """Give a user (one generation) a role in a study, replacing the one they had there."""
    db.execute(
        "INSERT INTO study_roles VALUES (?, ?, ?, ?)"
        " ON CONFLICT (uid, study_id) DO UPDATE SET role=excluded.role, site=excluded.site",
        (uid, study_id, role.value, site),
    )


def remove_role_in(db: sqlite3.Connection, uid: str, study_id: str) -> bool:
    """Take a user's role in a study away; False when they had none there."""
    return db.execute("DELETE FROM study_roles WHERE uid=? AND study_id=?", (uid, study_id)).rowcount > 0


def users_in(db: sqlite3.Connection, study_id: str) -> list[User]:
    """The enabled users with a role in a study, by name, each as that study sees them."""
    rows = db.execute(
        "SELECT users.name, study_roles.role, study_roles.site FROM study_roles JOIN users USING (uid)"
        " WHERE study_id = ? AND users.enabled = 1 ORDER BY users.name",
        (study_id,),
    ).fetchall()
    return [User(row[0], Role(row[1]), row[2], study=study_id) for row in rows]
