"""Registered sources (lab systems): name, site, HL7 sending application, and API key digests.

One SQLite file in the gateway's data directory, readable by its owner alone (mode 0600). It holds
the SHA-256 of each API key, never a key: a key is shown once, when the source is added or its key
rotated. Nothing here logs a key. A source may be disabled, enabled, removed, or given a new key;
each takes effect on the next request (every request looks its key up), and each is published to
the access log before it is kept (``services/access_log.py``). ``Source`` and what the store
shares with its callers are in ``source_record.py`` (re-exported here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

import structlog

from contracts import AccessAction
from services.defaults import DEFAULT_STUDY
from services.gateway.local_time import LocalTimeError, check_time_zone
from services.gateway.source_record import (
    HL7_NAMESPACE,
    IDENTIFIER,
    ChangeRecorder,
    Source,
    SourceError,
    address_in,
    parse_networks,
)
from services.options import TOPIC_NAME_PART

log = structlog.get_logger("trialguard.gateway.sources")

__all__ = [
    "HL7_NAMESPACE",
    "IDENTIFIER",
    "ChangeRecorder",
    "Source",
    "SourceError",
    "SourceStore",
    "address_in",
    "parse_networks",
]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    hl7_application TEXT,
    hl7_facility TEXT,
    key_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    enabled INTEGER NOT NULL DEFAULT 1,
    UNIQUE (hl7_application, hl7_facility)
);
"""

_MIGRATIONS: Final = {
    # column: how a store made before it gets it
    "enabled": "ALTER TABLE sources ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1",
    "mllp_allow": "ALTER TABLE sources ADD COLUMN mllp_allow TEXT NOT NULL DEFAULT ''",
    "time_zone": "ALTER TABLE sources ADD COLUMN time_zone TEXT",
    "strict": "ALTER TABLE sources ADD COLUMN strict INTEGER NOT NULL DEFAULT 0",
    # A source added before sources had studies sent for the one study gateways then fed.
    "studies": f"ALTER TABLE sources ADD COLUMN studies TEXT NOT NULL DEFAULT '{DEFAULT_STUDY}'",
}


def _key_digest(key: str) -> str:
    # A key is 32 random bytes from `secrets` (as the dashboard's API tokens): no one can guess it,
    # so it needs no slow salted hash. SHA-256 keeps a stolen copy of the file from being usable,
    # and the lookup by digest tells a timing attacker nothing about any stored key.
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _checked_zone(name: str | None) -> str | None:
    try:
        return None if name is None else check_time_zone(name)
    except LocalTimeError as e:
        raise SourceError(f"--time-zone: {e}") from None


def _source(row: sqlite3.Row) -> Source:
    allowed = tuple(row["mllp_allow"].split())
    return Source(
        row["name"],
        row["site"],
        row["hl7_application"],
        row["hl7_facility"],
        row["created_at"],
        bool(row["enabled"]),
        allowed,
        row["time_zone"],
        bool(row["strict"]),
        tuple(row["studies"].split()),
    )


class SourceStore:
    """The gateway's registered sources, in an SQLite file; safe to share between threads.

    Args:
        path: the SQLite file; created (mode 0600) with its table when missing.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Created by us with 0600 before SQLite opens it, so it is never readable by others.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        if self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)
        with self._connect() as connection:
            connection.executescript(_SCHEMA)
            columns = {row["name"] for row in connection.execute("PRAGMA table_info(sources)")}
            for column, statement in _MIGRATIONS.items():
                if column not in columns:
                    connection.execute(statement)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection of its own for one call (threads never share one), always closed."""
        connection = sqlite3.connect(self.path, timeout=10.0)
        try:
            connection.row_factory = sqlite3.Row
            with connection:
                yield connection
        finally:
            connection.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, committed only when the block (and its access-log event) succeeded."""
        with self._connect() as connection:
            connection.execute("BEGIN IMMEDIATE")
            yield connection

    def add(
        self,
        name: str,
        site: str,
        hl7_application: str | None = None,
        hl7_facility: str | None = None,
        mllp_allow: Iterable[str] = (),
        recorder: ChangeRecorder | None = None,
        *,
        time_zone: str | None = None,
        strict: bool = False,
        studies: Sequence[str] = (DEFAULT_STUDY,),
    ) -> tuple[Source, str]:
        """Register a source and make its API key.

        Args:
            name: a contract identifier (1-64 of ``A-Z a-z 0-9 _ . : -``), unique.
            site: the site id its events carry.
            hl7_application: MSH-3 of its HL7 messages; given together with ``hl7_facility``.
            hl7_facility: MSH-4 of its HL7 messages.
            mllp_allow: addresses or networks it may send MLLP from (needs the HL7 pair).
            time_zone: the IANA zone its local times are read in.
            strict: refuse messages carrying results the study does not use.
            studies: the studies it sends for, at least one (the access-log event goes to the
                recorder, which records it in each of them: ``trialguard sources add``).

        Returns:
            The source and its API key: the only time the key exists outside the caller.

        Raises:
            SourceError: a bad name, site, HL7 id or time zone, only one of the HL7 pair, a name
                taken, or an HL7 pair already registered to another source.
        """
        for what, value in (("source name", name), ("site", site)):
            if not IDENTIFIER.fullmatch(value):
                raise SourceError(
                    f"{what} {value[:80]!r}: 1-64 of A-Z a-z 0-9 _ . : -, starting with a letter or digit"
                )
        studies = tuple(dict.fromkeys(studies))
        if not studies:
            raise SourceError("a source sends for at least one study (--study)")
        for study in studies:
            if not TOPIC_NAME_PART.fullmatch(study):
                raise SourceError(f"--study {study[:80]!r}: a study id is 1-100 of A-Z a-z 0-9 . _ -")
        if (hl7_application is None) != (hl7_facility is None):
            raise SourceError("--hl7-application and --hl7-facility go together (MSH-3 and MSH-4)")
        for what, hl7 in (("HL7 application", hl7_application), ("HL7 facility", hl7_facility)):
            if hl7 is not None and not HL7_NAMESPACE.fullmatch(hl7):
                raise SourceError(f"{what} {hl7[:80]!r}: 1-180 characters, none of | ^ ~ \\ & or a line break")
        networks = parse_networks(mllp_allow)
        if networks and hl7_application is None:
            raise SourceError("--mllp-allow needs --hl7-application and --hl7-facility (MLLP messages name the source)")
        zone = _checked_zone(time_zone)
        key = secrets.token_urlsafe(32)
        created = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        try:
            with self._transaction() as connection:
                connection.execute(
                    "INSERT INTO sources (name, site, hl7_application, hl7_facility, key_sha256, created_at, "
                    "mllp_allow, time_zone, strict, studies) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (name, site, hl7_application, hl7_facility, _key_digest(key), created, " ".join(networks),
                     zone, int(strict), " ".join(studies)),
                )  # fmt: skip
                if recorder is not None:
                    recorder.record(AccessAction.SOURCE_ADDED, "source", name, site=site, enabled=True)
        except sqlite3.IntegrityError:
            if self.get(name) is not None:
                raise SourceError(f"a source named {name!r} already exists") from None
            raise SourceError(
                f"HL7 sending application {hl7_application!r} at {hl7_facility!r} is registered to another source"
            ) from None
        log.info("source_added", source=name, site=site, studies=list(studies), mllp_allow=list(networks))
        return Source(name, site, hl7_application, hl7_facility, created, True, networks, zone, strict, studies), key

    def allow_mllp(self, name: str, networks: Iterable[str], recorder: ChangeRecorder) -> Source:
        """Replace the networks a source may send MLLP from (none: no MLLP).

        Raises:
            SourceError: no such source, a source without HL7 ids, or a value that is no network.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        parsed = parse_networks(networks)
        source = self.get(name)
        if source is None:
            raise SourceError(f"no source named {name[:80]!r}")
        if parsed and source.hl7_application is None:
            raise SourceError(f"source {name!r} has no HL7 sending application: MLLP messages could not name it")
        sql = "UPDATE sources SET mllp_allow=? WHERE name=?"
        self._changed(name, recorder, AccessAction.SOURCE_MLLP_ALLOWED, sql, " ".join(parsed))
        log.info("source_mllp_allowed", source=name, mllp_allow=list(parsed))
        return dataclasses.replace(source, mllp_allow=parsed)

    def configure(
        self, name: str, recorder: ChangeRecorder, *, time_zone: str | None = None, strict: bool | None = None
    ) -> Source:
        """Set how a source's messages are read: its time zone, strict or filtering (None: unchanged).

        Raises:
            SourceError: no such source, or not a time zone.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        zone = _checked_zone(time_zone)
        source = self.get(name)
        if source is None:
            raise SourceError(f"no source named {name[:80]!r}")
        changed = dataclasses.replace(
            source,
            time_zone=source.time_zone if zone is None else zone,
            strict=source.strict if strict is None else strict,
        )
        sql = "UPDATE sources SET time_zone=?, strict=? WHERE name=?"
        self._changed(name, recorder, AccessAction.SOURCE_CONFIGURED, sql, changed.time_zone, int(changed.strict))
        return changed

    def mllp_peer_allowed(self, address: str) -> bool:
        """Whether any source may send MLLP from this address (else its connection is closed)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT mllp_allow FROM sources WHERE mllp_allow != '' AND enabled = 1"
            ).fetchall()
        return any(address_in(address, row["mllp_allow"].split()) for row in rows)

    def _changed(self, name: str, recorder: ChangeRecorder, action: AccessAction, sql: str, *values: object) -> None:
        with self._transaction() as db:
            row = db.execute("SELECT * FROM sources WHERE name=?", (name,)).fetchone()
            if row is None:
                raise SourceError(f"no source named {name[:80]!r}")
            db.execute(sql, (*values, name))
            enabled = action is not AccessAction.SOURCE_REMOVED and bool(
                db.execute("SELECT enabled FROM sources WHERE name=?", (name,)).fetchone()["enabled"]
            )
            recorder.record(action, "source", name, site=row["site"], enabled=enabled)
        log.info("source_changed", source=name, action=action.value)

    def rotate_key(self, name: str, recorder: ChangeRecorder) -> str:
        """A new API key for a source; the old one stops working at once. Returns the new key (shown once).

        Raises:
            SourceError: no such source.
            AccessLogError: Kafka did not take the event (the old key still works).
        """
        key = secrets.token_urlsafe(32)
        sql = "UPDATE sources SET key_sha256=? WHERE name=?"
        self._changed(name, recorder, AccessAction.SOURCE_KEY_ROTATED, sql, _key_digest(key))
        return key

    def set_enabled(self, name: str, enabled: bool, recorder: ChangeRecorder) -> None:
        """Disable (its key and HL7 identity refused at once) or enable a source.

        Raises:
            SourceError: no such source.
            AccessLogError: Kafka did not take the event (nothing changed).
        """
        action = AccessAction.SOURCE_ENABLED if enabled else AccessAction.SOURCE_DISABLED
        self._changed(name, recorder, action, "UPDATE sources SET enabled=? WHERE name=?", int(enabled))

    def remove(self, name: str, recorder: ChangeRecorder) -> None:
        """Remove a source and its key; the name may be registered again, with a new key.

        Raises:
            SourceError: no such source.
            AccessLogError: Kafka did not take the event (nothing removed).
        """
        self._changed(name, recorder, AccessAction.SOURCE_REMOVED, "DELETE FROM sources WHERE name=?")

    def by_key(self, key: str) -> Source | None:
        """The enabled source an API key belongs to, or None (never issued, rotated away, disabled, removed)."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT * FROM sources WHERE key_sha256 = ? AND enabled = 1", (_key_digest(key),)
            ).fetchone()
        return None if row is None else _source(row)

    def by_sending_application(self, application: str, facility: str) -> Source | None:
        """The source registered for an HL7 v2 sending application (MSH-3) and facility (MSH-4),
        compared exactly, or None."""
        with self._connect() as connection:
            row = connection.execute(
                "SELECT * FROM sources WHERE hl7_application = ? AND hl7_facility = ? AND enabled = 1",
                (application, facility),
            ).fetchone()
        return None if row is None else _source(row)

    def get(self, name: str) -> Source | None:
        """The source with this name, or None."""
        with self._connect() as connection:
            row = connection.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return None if row is None else _source(row)

    def list_sources(self) -> list[Source]:
        """Every source, by name."""
        with self._connect() as connection:
            rows = connection.execute("SELECT * FROM sources ORDER BY name").fetchall()
        return [_source(row) for row in rows]
