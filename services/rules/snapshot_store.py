"""Participants' latest snapshots kept on local disk, not in memory, while nobody asks for them.

A partition's state lives in the compacted state topic; the owner keeps in memory what it
works on. Were every participant it ever touched kept decoded (about 12 KB each), its memory
would grow with the trial's participants for as long as it runs. So the snapshots of the
participants at rest — restored and not yet asked for, or unchanged since the round that wrote
them (``RestoredStates.rest``) — go to a private temporary SQLite database (the library's own
on-disk temporary database: deleted when its connection closes, 256 KiB of page cache in
memory). Like Kafka Streams' local state store, it is a cache of the state topic, rebuilt at
every take-over: nothing in it is the only copy of anything.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

CACHE_KIB = 256
"""SQLite's page cache of one partition's store, KiB (its default is 2,000)."""


class SnapshotStore:
    """Snapshot bytes by participant id, on local disk."""

    def __init__(self) -> None:
        # "": a private temporary on-disk database, deleted when closed (SQLite's documentation).
        self._db = sqlite3.connect("", isolation_level=None)
        # Nothing here outlives the process, so no sync to disk; the rollback journal in memory.
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("PRAGMA journal_mode=MEMORY")
        # Pages cached in memory at most (KiB): a snapshot at rest is read once, when its
        # participant's next event comes; the operating system caches the file anyway.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.execute("CREATE TABLE snapshots (pid TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
        self._count = 0

    def add(self, items: list[tuple[str, bytes]]) -> None:
        """Keep each (participant id, snapshot) of participants not kept yet (the caller holds each
        participant in one place: decoded, or here).

        Raises:
            sqlite3.IntegrityError: a participant is kept already (nothing of ``items`` is added).
        """
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO snapshots VALUES (?, ?)", items)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._count += len(items)

    def get(self, pid: str) -> bytes | None:
        """The snapshot kept for ``pid``, or None."""
        row = self._db.execute("SELECT data FROM snapshots WHERE pid = ?", (pid,)).fetchone()
        return None if row is None else bytes(row[0])

    def discard(self, pid: str) -> bool:
        """Forget ``pid``'s snapshot; whether there was one."""
        gone = self._db.execute("DELETE FROM snapshots WHERE pid = ?", (pid,)).rowcount > 0
        self._count -= gone
        return gone

    def __contains__(self, pid: object) -> bool:
        return self._db.execute("SELECT 1 FROM snapshots WHERE pid = ?", (pid,)).fetchone() is not None

    def __iter__(self) -> Iterator[str]:
        yield from [pid for (pid,) in self._db.execute("SELECT pid FROM snapshots ORDER BY pid")]

    def __len__(self) -> int:
        return self._count
