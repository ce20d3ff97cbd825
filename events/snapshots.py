"""Participant-state snapshots: the state as versioned JSON, for the compacted state topic.

A snapshot is derived data: the participant-events log can always rebuild it. It exists so a
restarted service resumes without re-reading history. ``decode`` reads every version ever
written; an older version is upcast step by step to the current one.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from pydantic_core import to_json

from contracts import ParticipantEvent, parse_event
from contracts.participant_events import ScreeningLabResulted
from contracts.retained import retained
from protocol.state import KeptFinding, ParticipantState, SeenIds

SNAPSHOT_VERSION = 5

_EVENT_FIELDS = ("registration", "consent_withdrawal", "biopsy", "eular", "history", "eligibility", "enrollment")
_EVENT_LISTS = ("sledai", "ecog", "gcsf", "csf", "bilag")
_TIMES = ("leukapheresis_at", "lymphodepletion_at", "withdrawn_at")


class SnapshotError(ValueError):
    """Bytes that are not a snapshot this code can read."""


def encode(state: ParticipantState) -> bytes:
    """The snapshot of a participant's state (current version), compact UTF-8 JSON.

    Events are written in their contract-v1 wire form. One snapshot per changed participant goes
    out with every batch, so this is serialised in one pass by pydantic-core, not via dicts.
    """
    return to_json(_body(state))


def pack(state: ParticipantState) -> bytes:
    """A state kept for rare use (the screening record an enrollment was decided on), compressed:
    a snapshot (``encode``) through zlib at its fastest level, about a fifth of the JSON."""
    return zlib.compress(encode(state), 1)


def unpack(packed: bytes) -> ParticipantState:
    """The state ``pack`` packed.

    Raises:
        SnapshotError: not a packed snapshot this code can read.
    """
    try:
        data = zlib.decompress(packed)
    except zlib.error as e:
        raise SnapshotError(f"not a packed participant state: {e}") from None
    return decode(data)


def _body(state: ParticipantState) -> dict[str, Any]:
    body: dict[str, Any] = {
        "snapshot_version": SNAPSHOT_VERSION,
        "participant_id": state.participant_id,
        "consent_signed_at": dict(sorted(state.consent_signed_at.items())),
        "labs": dict(sorted(state.labs.items())),
        "infusions_at": state.infusions_at,
        "visits_done": sorted(state.visits_done),
        "raised": sorted(state.raised),
        # v2: 16 raw bytes per id, base64 (v1 wrote a list of UUID strings, about twice the size:
        # the ids are most of a snapshot, and one goes out per participant and batch).
        "seen_event_ids": base64.b64encode(state.seen_event_ids.packed).decode(),
        # v3: the compact pre-enrollment state and the enrollment's findings; v4 packs the state
        # (``pack``, base64) where v3 nested its body: most of an enrolled participant's snapshot.
        "screening": None if state.screening is None else base64.b64encode(state.screening).decode(),
        "enrollment_findings": [[str(k.finding_id), k.rule_id, k.once_key] for k in state.enrollment_findings],
    }
    for name in (*_EVENT_FIELDS, *_EVENT_LISTS, *_TIMES):
        body[name] = getattr(state, name)
    return body


def decode(data: bytes) -> ParticipantState:
    """The participant's state from a snapshot of any version.

    Raises:
        SnapshotError: not JSON, an unknown version, or a body this version cannot read.
    """
    try:
        body = json.loads(data)
        version = body["snapshot_version"]
    except (ValueError, KeyError, TypeError) as e:
        raise SnapshotError(f"not a participant-state snapshot: {e}") from None
    if not isinstance(version, int) or not 1 <= version <= SNAPSHOT_VERSION:
        raise SnapshotError(f"snapshot version {version!r} is not one this code reads (1..{SNAPSHOT_VERSION})")
    try:
        return _load(_upcast(body, version))
    except (ValueError, KeyError, TypeError) as e:
        raise SnapshotError(f"snapshot of {body.get('participant_id')!r} cannot be read: {e}") from None


def _upcast(body: dict[str, Any], version: int) -> dict[str, Any]:
    for upcast in UPCASTERS[version - 1 :]:
        body = upcast(body)
    return body


def _v1_to_v2(body: dict[str, Any]) -> dict[str, Any]:
    """Version 2 packs the seen event ids as base64 of their raw bytes."""
    packed = base64.b64encode(b"".join(uuid.UUID(i).bytes for i in body["seen_event_ids"])).decode()
    return {**body, "snapshot_version": 2, "seen_event_ids": packed}


def _v2_to_v3(body: dict[str, Any]) -> dict[str, Any]:
    """Version 3 keeps, for an enrolled participant, the state before enrollment and the findings
    the enrollment raised. A version-2 snapshot has neither (the screening record was dropped at
    enrollment): a correction after enrollment then finds no kept result and changes nothing,
    as before; replaying participant-events from offset 0 rebuilds them."""
    return {**body, "snapshot_version": 3, "screening": None, "enrollment_findings": []}


def _v3_to_v4(body: dict[str, Any]) -> dict[str, Any]:
    """Version 4 packs the kept pre-enrollment state (``pack``) where version 3 nested its body."""
    nested = body["screening"]
    if nested is None:
        return {**body, "snapshot_version": 4}
    kept = _load(_upcast(nested, nested["snapshot_version"]))
    return {**body, "snapshot_version": 4, "screening": base64.b64encode(pack(kept)).decode()}


def _v4_to_v5(body: dict[str, Any]) -> dict[str, Any]:
    """Version 5 keeps every colony-stimulating-factor exposure (``csf``: the G-CSF ones of
    ``gcsf`` and any other) and the BILAG-2004 assessments. A version-4 state had only ``gcsf``:
    those are its CSF exposures; it had no BILAG (the event did not exist)."""
    return {**body, "snapshot_version": 5, "csf": list(body["gcsf"]), "bilag": []}


UPCASTERS: list[Callable[[dict[str, Any]], dict[str, Any]]] = [_v1_to_v2, _v2_to_v3, _v3_to_v4, _v4_to_v5]
"""UPCASTERS[v - 1] turns a version-v body into a version v+1 body. Add one per new version."""


def _event(wire: Any) -> ParticipantEvent:
    # An event accepted once: written out again (omitted fields as null, non-ASCII escaped) it can
    # outgrow the size limit of incoming messages, and must still restore.
    return retained(parse_event(json.dumps(wire), max_bytes=None))


def _lab(wire: Any) -> ScreeningLabResulted:
    event = _event(wire)
    if not isinstance(event, ScreeningLabResulted):
        raise TypeError(f"a lab result was expected, not {event.event_type}")
    return event


def _load(body: dict[str, Any]) -> ParticipantState:
    def at(value: str | None) -> dt.datetime | None:
        return None if value is None else dt.datetime.fromisoformat(value)

    events = {name: None if body[name] is None else _event(body[name]) for name in _EVENT_FIELDS}
    lists = {name: tuple(_event(e) for e in body[name]) for name in _EVENT_LISTS}
    times = {name: at(body[name]) for name in _TIMES}
    raw = base64.b64decode(body["seen_event_ids"], validate=True)
    return ParticipantState(
        participant_id=body["participant_id"],
        consent_signed_at={k: dt.datetime.fromisoformat(v) for k, v in body["consent_signed_at"].items()},
        labs={k: tuple(_lab(e) for e in v) for k, v in body["labs"].items()},
        infusions_at=tuple(dt.datetime.fromisoformat(t) for t in body["infusions_at"]),
        visits_done=frozenset(body["visits_done"]),
        raised=frozenset(body["raised"]),
        seen_event_ids=SeenIds(raw),
        screening=None if body["screening"] is None else base64.b64decode(body["screening"], validate=True),
        enrollment_findings=tuple(
            KeptFinding(uuid.UUID(fid), rule_id, key) for fid, rule_id, key in body["enrollment_findings"]
        ),
        **events,  # type: ignore[arg-type]
        **lists,  # type: ignore[arg-type]
        **times,  # type: ignore[arg-type]
    )
