"""A finding's why, read from the read model: the generator (``services.presentation.explanation``)
given the protocol version the finding was decided under, the record's criteria and the
participant's events (to link the lab result that carried a failing value).

Derived when read, never stored: a new wording needs no rebuild and findings stay as published.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from protocol.criteria import Criterion
from protocol.kit import KitError, kit_of
from protocol.model import Protocol
from protocol.registry import ProtocolLookupError, versions_for
from services.presentation.explanation import LAB_EVENT, Explanation, explain


@functools.lru_cache(maxsize=64)  # bounded: a hostile finding may name any study or version
def _protocol(study_id: str, version: str) -> Protocol | None:
    try:
        return versions_for(study_id).version(version)
    except (ProtocolLookupError, KeyError):
        return None


@functools.lru_cache(maxsize=64)  # bounded: a hostile finding may name any study or version
def _criteria(study_id: str, version: str) -> tuple[Criterion, ...]:
    protocol = _protocol(study_id, version)
    if protocol is None:
        return ()
    try:
        return kit_of(protocol).criteria
    except KitError:
        return ()


def lab_events(db: sqlite3.Connection, participant_id: str) -> list[dict[str, Any]]:
    """A participant's screening lab results (bodies parsed), the only events an explanation links."""
    rows = db.execute(
        "SELECT body FROM events WHERE participant_id = ? AND event_type = ? ORDER BY occurred_utc, position",
        (participant_id, LAB_EVENT),
    ).fetchall()
    return [json.loads(row["body"]) for row in rows]


def explanation_of(db: sqlite3.Connection, body: Mapping[str, Any]) -> Explanation:
    """Why the finding ``body`` (as published) was raised, under the version it names."""
    study, version = str(body.get("study_id", "")), str(body.get("protocol_version", ""))
    participant = str(body.get("participant_id", ""))
    loaded: list[Sequence[Mapping[str, Any]]] = []

    def events() -> Sequence[Mapping[str, Any]]:
        if not loaded:  # read once, and only when a value that broke a limit may be a lab's
            loaded.append(lab_events(db, participant))
        return loaded[0]

    return explain(body, _protocol(study, version), _criteria(study, version), events)
