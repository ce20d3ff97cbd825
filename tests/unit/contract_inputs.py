"""What the contract tests share: events as JSON with one change to their envelope."""

from __future__ import annotations

import json
from typing import Any

from tests.builders import event_dict


def event_with(
    change: dict[str, Any], payload: dict[str, Any] | None = None, event_type: str = "ParticipantRegistered"
) -> bytes:
    """A participant event (a ParticipantRegistered by default) as JSON, with ``change`` made to
    its envelope; a key changed to ``DROP`` is left out."""
    base = event_dict(
        event_type,
        payload
        if payload is not None
        else {"birth_date": "2015-09-14", "sex": "F", "height_cm": 133.0, "weight_kg": 27.5},
    )
    base.update(change)
    return json.dumps({k: v for k, v in base.items() if v is not DROP}).encode()


DROP = object()
"""A value of ``event_with``'s change: leave the key out."""
REGISTRATION = {"birth_date": "2015-09-14", "sex": "F", "height_cm": 133.0, "weight_kg": 27.5}
