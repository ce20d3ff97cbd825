"""Contract-v1 events for tests, with defaults for everything a test does not care about."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from contracts import ParticipantEvent, parse_event

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_EVENTS = EXAMPLES / "three-participants.jsonl"
EXAMPLE_EXPECTED = EXAMPLES / "three-participants.expected.json"

STUDY = "NCT06904729"


def event_dict(
    event_type: str,
    payload: dict[str, Any] | None = None,
    *,
    participant: str = "P-0001",
    at: str = "2025-11-06T10:30:00+08:00",
    event_id: str | None = None,
    study: str = STUDY,
    site: str = "GZ-01",
) -> dict[str, Any]:
    """A contract-v1 event as a JSON-ready dict. The id is derived from the other fields unless given."""
    body = {
        "event_type": event_type,
        "schema_version": 1,
        "study_id": study,
        "site_id": site,
        "participant_id": participant,
        "occurred_at": at,
        "recorded_at": at,
        "source": {"system": "test", "actor": "tester"},
        "payload": payload or {},
    }
    digest = json.dumps(body, sort_keys=True)
    return {"event_id": event_id or str(uuid.uuid5(uuid.NAMESPACE_OID, digest)), **body}


def event(event_type: str, payload: dict[str, Any] | None = None, **kwargs: Any) -> ParticipantEvent:
    """A parsed contract-v1 event (see event_dict)."""
    return parse_event(json.dumps(event_dict(event_type, payload, **kwargs)))


def registered(birth_date: str, **kwargs: Any) -> ParticipantEvent:
    return event(
        "ParticipantRegistered", {"birth_date": birth_date, "sex": "F", "height_cm": 140.0, "weight_kg": 35.0}, **kwargs
    )


def consent(signer: str, **kwargs: Any) -> ParticipantEvent:
    return event("ConsentSigned", {"signer": signer, "consent_version": "1.0"}, **kwargs)


def lab(loinc: str = "751-8", value: float | str = 2.1, unit: str | None = "10*9/L", **kwargs: Any) -> ParticipantEvent:
    return event("ScreeningLabResulted", {"loinc": loinc, "value": value, "unit": unit, "uln": None}, **kwargs)


def example_lines() -> list[bytes]:
    """The example events (examples/), one message value per line, in log order."""
    return [line.rstrip(b"\n") for line in EXAMPLE_EVENTS.read_bytes().splitlines() if line.strip()]


def expected_rules(implemented: set[str]) -> dict[str, list[str]]:
    """The example's expected rule ids per participant, restricted to the rules implemented so far."""
    expected: dict[str, list[str]] = json.loads(EXAMPLE_EXPECTED.read_text())
    return {pid: sorted(r for r in rules if r in implemented) for pid, rules in expected.items()}
