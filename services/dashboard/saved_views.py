"""Saved views: a user's named findings filters (queue, filters, sort), per study.

Kept in the user store's file (they are the user's own settings, not derived data), tied to one
generation of the user (``uid``): removing a user removes their views, and a name added again
starts with none. Only a canonical query is kept: the filter and sort parsed and validated like
any request's, so a saved view can hold nothing a request could not.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlencode

from services.dashboard import queries

MAX_VIEWS: Final = 50
"""Views one user may keep in one study."""
MAX_NAME_CHARS: Final = 60

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS saved_views (
    view_id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL REFERENCES users(uid) ON DELETE CASCADE,
    study_id TEXT NOT NULL,
    name TEXT NOT NULL,
    query TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (uid, study_id, name));
"""


class ViewError(ValueError):
    """A view that cannot be saved or deleted; the message says why."""


@dataclass(frozen=True)
class SavedView:
    """One saved view: its id, name and the findings page's query string."""

    view_id: int
    name: str
    query: str


def canonical_query(params: Mapping[str, str]) -> str:
    """The query string a view keeps: the filter and sort, validated, nothing else.

    Raises:
        ViewError: a filter or sort a request would be refused for.
    """
    try:
        found = queries.FindingFilter.from_params(dict(params))
        page = queries.Page.from_params(dict(params))
    except queries.FilterError as error:
        raise ViewError(str(error)) from None
    sort = {"sort": page.sort, "order": "desc" if page.descending else "asc"} if page.sort else {}
    return urlencode(replace(found, as_of="").params() | sort)  # a view is live, not the snapshot it was saved in


class SavedViews:
    """The saved views in the user store at ``path`` (the store creates the users table first)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._connect() as db:
            db.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            connection.execute("PRAGMA foreign_keys = ON")
            with connection:
                yield connection
        finally:
            connection.close()

    def of(self, user: str, study_id: str) -> list[SavedView]:
        """A user's views in a study, by name."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT view_id, saved_views.name, query FROM saved_views JOIN users USING (uid)"
                " WHERE users.name=? AND study_id=? ORDER BY saved_views.name",
                (user, study_id),
            ).fetchall()
        return [SavedView(int(row[0]), str(row[1]), str(row[2])) for row in rows]

    def save(self, user: str, study_id: str, name: str, params: Mapping[str, str]) -> SavedView:
        """Save (or replace) a view by name.

        Raises:
            ViewError: an empty or long name, a bad filter, too many views, or no such user.
        """
        name = " ".join(name.split())
        if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
            raise ViewError(f"a view's name is 1-{MAX_NAME_CHARS} printable characters")
        query = canonical_query(params)
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            found = db.execute("SELECT uid FROM users WHERE name=?", (user,)).fetchone()
            if found is None:
                raise ViewError(f"no user named {user[:64]!r}")
            kept = db.execute(
                "SELECT count(*) FROM saved_views WHERE uid=? AND study_id=? AND name<>?", (found[0], study_id, name)
            ).fetchone()[0]
            if kept >= MAX_VIEWS:
                raise ViewError(f"{MAX_VIEWS} views at most per study: delete one first")
            db.execute(
                "INSERT INTO saved_views (uid, study_id, name, query, created_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (uid, study_id, name) DO UPDATE SET query=excluded.query",
                (found[0], study_id, name, query, dt.datetime.now(dt.UTC).isoformat(timespec="seconds")),
            )
            view_id = db.execute(
                "SELECT view_id FROM saved_views WHERE uid=? AND study_id=? AND name=?", (found[0], study_id, name)
            ).fetchone()[0]
        return SavedView(int(view_id), name, query)

    def delete(self, user: str, study_id: str, view_id: int) -> None:
        """Delete one of the user's own views in the study.

        Raises:
            ViewError: no such view of this user in this study (another's is "no such view" too).
        """
        with self._connect() as db:
            deleted = db.execute(
                "DELETE FROM saved_views WHERE view_id=? AND study_id=? AND uid=(SELECT uid FROM users WHERE name=?)",
                (view_id, study_id, user),
            ).rowcount
        if not deleted:
            raise ViewError("no such view")
