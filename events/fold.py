"""fold: how each event changes what is known about a participant. Pure."""

from __future__ import annotations

import dataclasses

from contracts import ParticipantEvent
from contracts.participant_events import ConsentSigned, ParticipantRegistered
from protocol.state import ParticipantState


def fold(state: ParticipantState, event: ParticipantEvent) -> ParticipantState:
    """The participant's state after ``event``. Events that change no fact return ``state``."""
    match event:
        case ParticipantRegistered(payload=p):
            return dataclasses.replace(state, birth_date=p.birth_date)
        case ConsentSigned(payload=p) if p.signer not in state.consent_signed_at:
            return dataclasses.replace(
                state, consent_signed_at={**state.consent_signed_at, p.signer: event.occurred_at}
            )
    return state
