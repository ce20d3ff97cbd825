"""What the protocol knows about one participant: the facts folded from their events so far."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Literal

Signer = Literal["participant", "guardian"]


@dataclass(frozen=True)
class ParticipantState:
    """One participant's facts, folded from their events in log order (see events.fold).

    Attributes:
        participant_id: the pseudonymous id.
        birth_date: from registration; None until registered.
        consent_signed_at: the first signature of each signer (event time).
        raised: keys of findings already raised, so each is raised once.
        seen_event_ids: event ids already processed, so a duplicate changes nothing.
    """

    participant_id: str
    birth_date: dt.date | None = None
    consent_signed_at: dict[Signer, dt.datetime] = field(default_factory=dict)
    raised: frozenset[str] = frozenset()
    seen_event_ids: frozenset[uuid.UUID] = frozenset()
