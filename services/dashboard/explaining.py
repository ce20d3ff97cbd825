"""A finding's why, read from the read model: the generator (``services.presentation.explanation``)
under the protocol version the finding was decided under, given the participant's screening lab
results (to name the date of, and link, the lab result that carried a failing value).

Derived when read, never stored: a new wording needs no rebuild and findings stay as published.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from services.presentation.explanation import LAB_EVENT, Explanation, explain_published


def lab_events(db: sqlite3.Connection, participant_id: str) -> list[dict[str, Any]]:
    """A participant's screening lab results (bodies parsed), the only events an explanation links."""
    rows = db.execute(
        "SELECT body FROM events WHERE participant_id = ? AND event_type = ? ORDER BY occurred_utc, position",
        (participant_id, LAB_EVENT),
    ).fetchall()
    return [json.loads(row["body"]) for row in rows]


def explanation_of(db: sqlite3.Connection, body: Mapping[str, Any]) -> Explanation:
    """Why the finding ``body`` (as published) was raised, under the version it names."""
    participant = str(body.get("participant_id", ""))
    loaded: list[Sequence[Mapping[str, Any]]] = []

    def events() -> Sequence[Mapping[str, Any]]:
        if not loaded:  # read once, and only when a value that broke a limit may be a lab's
            loaded.append(lab_events(db, participant))
        return loaded[0]

    return explain_published(body, events)
